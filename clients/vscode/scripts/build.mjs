// Bundle the extension with esbuild: one CommonJS file, `vscode` external (the editor provides it).
//
//   node scripts/build.mjs           out/extension.js, minified, no source map (what the .vsix ships)
//   node scripts/build.mjs --dev     out/extension.js with an inline source map, not minified
//   node scripts/build.mjs --test    the test builds, never packaged: .test-out/common/resolve.js (unit
//                                    tests) and test/e2e/extension/out/extension.js (the e2e test extension)
//
// Type checking is tsc's job (`npm run typecheck`); esbuild only strips types and bundles.
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const EXT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const args = new Set(process.argv.slice(2));

const common = {
  absWorkingDir: EXT_DIR,
  bundle: true,
  platform: "node",
  format: "cjs",
  // engines.vscode ^1.91 runs Node 20 in its extension host
  target: "node20",
  external: ["vscode"],
  logLevel: "warning",
};

const builds = args.has("--test")
  ? [
      { ...common, entryPoints: ["src/common/resolve.ts"], outfile: ".test-out/common/resolve.js", sourcemap: "inline" },
      {
        ...common,
        entryPoints: ["test/e2e/extension/src/extension.ts"],
        outfile: "test/e2e/extension/out/extension.js",
        sourcemap: "inline",
      },
    ]
  : [
      {
        ...common,
        entryPoints: ["src/extension.ts"],
        outfile: "out/extension.js",
        minify: !args.has("--dev"),
        sourcemap: args.has("--dev") ? "inline" : false,
        // keep class and function names readable in stack traces even when minified
        keepNames: true,
        metafile: true,
      },
    ];

for (const options of builds) {
  const result = await esbuild.build(options);
  if (result.metafile) {
    const out = result.metafile.outputs[options.outfile];
    console.log(`${options.outfile}: ${(out.bytes / 1024).toFixed(0)} KiB from ${Object.keys(out.inputs).length} modules`);
  } else {
    console.log(options.outfile);
  }
}
