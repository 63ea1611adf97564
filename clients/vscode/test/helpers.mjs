// Shared by the protocol test and the end-to-end driver.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

export const EXT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const REPO_DIR = path.resolve(EXT_DIR, "..", "..");
export const FIXTURE_DIR = path.join(EXT_DIR, "test", "fixture");

/** The server command: $SEMCODE_SERVER (an executable, run with `serve`) or the repo's venv. */
export function serverCommand() {
  const server = process.env.SEMCODE_SERVER || path.join(REPO_DIR, ".venv", "bin", "semcode");
  if (!fs.existsSync(server)) {
    throw new Error(`semcode server not found at ${server} (set SEMCODE_SERVER)`);
  }
  return { command: server, args: ["serve"] };
}

/** The settings the extension sends by default, built from package.json's configuration defaults. */
export function defaultServerSettings() {
  const pkg = JSON.parse(fs.readFileSync(path.join(EXT_DIR, "package.json"), "utf8"));
  const props = pkg.contributes.configuration.properties;
  const d = (key) => props[`semcode.${key}`].default;
  return {
    model: d("model"),
    include: d("include"),
    exclude: d("exclude"),
    maxFileSize: d("maxFileSize"),
    hybrid: d("hybrid"),
    references: { similarCode: d("references.similarCode") },
    logLevel: d("logLevel"),
  };
}

/** A fresh copy of the fixture workspace in a temporary directory. */
export function copyFixture(prefix) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const workspace = path.join(root, "workspace");
  fs.cpSync(FIXTURE_DIR, workspace, { recursive: true });
  return { root, workspace };
}
