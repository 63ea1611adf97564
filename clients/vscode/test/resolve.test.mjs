// Unit tests of how the extension finds the server (.test-out/common/resolve.js, the esbuild test build:
// `node scripts/build.mjs --test` first).
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { EXT_DIR, REPO_DIR } from "./helpers.mjs";

const require = createRequire(import.meta.url);
const { resolveServerCommand, findOnPath, checkInterpreter, ServerNotFoundError, pipInstallCommand } = require(
  path.join(EXT_DIR, ".test-out", "common", "resolve.js"),
);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "semcode-resolve-"));
const fakeSemcode = path.join(tmp, "bin", "semcode");
fs.mkdirSync(path.dirname(fakeSemcode));
fs.writeFileSync(fakeSemcode, "#!/bin/sh\n", { mode: 0o755 });
const notExecutable = path.join(tmp, "bin", "plain");
fs.writeFileSync(notExecutable, "", { mode: 0o644 });

const settings = (overrides = {}) => ({
  path: "", interpreter: "", model: null, include: [], exclude: [], maxFileSize: 1_000_000,
  hybrid: true, referencesSimilarCode: false, logLevel: "info", ...overrides,
});
const deps = (overrides = {}) => ({
  pythonExtensionInterpreter: async () => undefined,
  findOnPath: () => undefined,
  checkInterpreter: async () => "ok",
  ...overrides,
});

test("semcode.path wins and is started with `serve`", async () => {
  const r = await resolveServerCommand(settings({ path: fakeSemcode, interpreter: "/usr/bin/python3" }), deps());
  assert.deepEqual(r, { command: fakeSemcode, args: ["serve"], source: "path" });
});

test("a semcode.path that does not exist is an error that offers the settings", async () => {
  await assert.rejects(resolveServerCommand(settings({ path: path.join(tmp, "nope") }), deps()), (e) => {
    assert.ok(e instanceof ServerNotFoundError);
    assert.match(e.message, /semcode\.path/);
    assert.ok(e.fixes.includes("openSettings"));
    return true;
  });
});

test("a non-executable semcode.path is rejected", async () => {
  await assert.rejects(resolveServerCommand(settings({ path: notExecutable }), deps()), ServerNotFoundError);
});

test("semcode.interpreter runs `python -m lsp_server`", async () => {
  const r = await resolveServerCommand(settings({ interpreter: "/opt/py/bin/python" }), deps());
  assert.deepEqual(r, { command: "/opt/py/bin/python", args: ["-m", "lsp_server"], source: "interpreter" });
});

test("an interpreter without semcode offers pip install into that interpreter", async () => {
  const run = resolveServerCommand(
    settings({ interpreter: "/opt/py/bin/python" }),
    deps({ checkInterpreter: async () => "missingModule" }),
  );
  await assert.rejects(run, (e) => {
    assert.ok(e.fixes.includes("installWithPip"));
    assert.match(e.message, /\/opt\/py\/bin\/python -m pip install semcode/);
    assert.deepEqual(e.python, ["/opt/py/bin/python"]);
    return true;
  });
});

test("an interpreter that is not a Python says so", async () => {
  const run = resolveServerCommand(settings({ interpreter: "/bin/false" }), deps({ checkInterpreter: async () => "notPython" }));
  await assert.rejects(run, /not a working Python/);
});

test("the Python extension's interpreter is used when semcode is installed there", async () => {
  const r = await resolveServerCommand(
    settings(),
    deps({ pythonExtensionInterpreter: async () => ["/venv/bin/python"], findOnPath: () => fakeSemcode }),
  );
  assert.deepEqual(r, { command: "/venv/bin/python", args: ["-m", "lsp_server"], source: "pythonExtension" });
});

test("otherwise semcode on PATH", async () => {
  const r = await resolveServerCommand(
    settings(),
    deps({
      pythonExtensionInterpreter: async () => ["/venv/bin/python"],
      checkInterpreter: async () => "missingModule",
      findOnPath: (name) => (name === "semcode" ? fakeSemcode : undefined),
    }),
  );
  assert.deepEqual(r, { command: fakeSemcode, args: ["serve"], source: "PATH" });
});

test("nothing found: an error that offers to install (into the Python extension's interpreter)", async () => {
  const run = resolveServerCommand(
    settings(),
    deps({ pythonExtensionInterpreter: async () => ["/venv/bin/python"], checkInterpreter: async () => "missingModule" }),
  );
  await assert.rejects(run, (e) => {
    assert.ok(e instanceof ServerNotFoundError);
    assert.match(e.message, /not installed/);
    assert.ok(e.fixes.includes("installWithPip") && e.fixes.includes("openSettings"));
    assert.equal(pipInstallCommand(e.python), "/venv/bin/python -m pip install semcode");
    return true;
  });
});

test("findOnPath finds executables only", () => {
  assert.equal(findOnPath("semcode", path.join(tmp, "bin")), fakeSemcode);
  assert.equal(findOnPath("plain", path.join(tmp, "bin")), undefined);
  assert.equal(findOnPath("semcode", ""), undefined);
});

test("checkInterpreter tells a Python without semcode from a missing interpreter", async () => {
  assert.equal(await checkInterpreter([path.join(tmp, "no-python")]), "notPython");
  const python3 = findOnPath("python3");
  if (python3) {
    assert.equal(await checkInterpreter([python3, "-I"]), "missingModule");
  }
  const venvPython = path.join(REPO_DIR, ".venv", "bin", "python");
  if (fs.existsSync(venvPython)) {
    assert.equal(await checkInterpreter([venvPython]), "ok");
  }
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
