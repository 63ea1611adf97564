// Drives the semcode server over stdio with the requests the VS Code extension sends.
//   node --test test/protocol.test.mjs      (SEMCODE_SERVER=/path/to/semcode to pick the server)
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { pathToFileURL } from "node:url";
import {
  createProtocolConnection,
  StreamMessageReader,
  StreamMessageWriter,
} from "vscode-languageserver-protocol/node";
import { copyFixture, defaultServerSettings, serverCommand } from "./helpers.mjs";

const INDEX_TIMEOUT_MS = Number(process.env.SEMCODE_INDEX_TIMEOUT_MS ?? 240_000);

let proc;
let connection;
let workspace;
let root;
let indexed;
const messages = [];
const progressTitles = [];
const settings = defaultServerSettings();

const uriOf = (rel) => pathToFileURL(path.join(workspace, rel)).href;

/** Range of the function whose first line contains `marker`, up to the next blank line. */
function functionRange(rel, marker) {
  const lines = fs.readFileSync(path.join(workspace, rel), "utf8").split("\n");
  const start = lines.findIndex((l) => l.includes(marker));
  assert.ok(start >= 0, `${marker} not in ${rel}`);
  let end = start + 1;
  while (end < lines.length && lines[end].trim() !== "") end++;
  return { start: { line: start, character: 0 }, end: { line: end - 1, character: lines[end - 1].length } };
}

const describe = (results) =>
  results.slice(0, 5).map((r) => `${r.symbol}@${path.basename(new URL(r.uri).pathname)}:${r.range.start.line}`).join(", ");

before(async () => {
  ({ root, workspace } = copyFixture("semcode-protocol-"));
  const { command, args } = serverCommand();
  const stderr = fs.openSync(path.join(root, "server.log"), "w");
  proc = spawn(command, args, {
    cwd: workspace,
    stdio: ["pipe", "pipe", stderr],
    env: { ...process.env, SEMCODE_CACHE_DIR: path.join(root, "cache") },
  });
  proc.on("exit", (code, signal) => {
    if (code !== 0 && code !== null) {
      console.error(`server exited with ${code ?? signal}; log:\n${fs.readFileSync(path.join(root, "server.log"), "utf8")}`);
    }
  });
  connection = createProtocolConnection(new StreamMessageReader(proc.stdout), new StreamMessageWriter(proc.stdin));

  let tokenOfIndex;
  indexed = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no index progress end within ${INDEX_TIMEOUT_MS} ms`)), INDEX_TIMEOUT_MS);
    connection.onNotification("$/progress", ({ token, value }) => {
      if (value.kind === "begin") {
        progressTitles.push(value.title);
        if (/index/i.test(value.title)) tokenOfIndex = token;
      } else if (value.kind === "end" && token === tokenOfIndex) {
        clearTimeout(timer);
        resolve(value);
      }
    });
  });
  connection.onRequest("window/workDoneProgress/create", () => null);
  connection.onRequest("client/registerCapability", () => null);
  connection.onRequest("client/unregisterCapability", () => null);
  connection.onRequest("workspace/configuration", (params) =>
    params.items.map((item) => (item.section === "semcode" ? settings : null)),
  );
  connection.onRequest("workspace/workspaceFolders", () => [{ uri: pathToFileURL(workspace).href, name: "workspace" }]);
  connection.onNotification("window/showMessage", (m) => messages.push(m));
  connection.onNotification("window/logMessage", () => {});
  connection.listen();

  const init = await connection.sendRequest("initialize", {
    processId: process.pid,
    clientInfo: { name: "semcode-protocol-test" },
    rootUri: pathToFileURL(workspace).href,
    workspaceFolders: [{ uri: pathToFileURL(workspace).href, name: "workspace" }],
    initializationOptions: settings,
    capabilities: {
      window: { workDoneProgress: true, showMessage: {} },
      workspace: {
        configuration: true,
        workspaceFolders: true,
        didChangeConfiguration: { dynamicRegistration: true },
        didChangeWatchedFiles: { dynamicRegistration: true },
        executeCommand: { dynamicRegistration: true },
        symbol: {},
      },
      textDocument: {
        synchronization: { didSave: true },
        codeAction: {
          codeActionLiteralSupport: { codeActionKind: { valueSet: ["", "quickfix", "refactor", "source"] } },
        },
        references: {},
        documentSymbol: { hierarchicalDocumentSymbolSupport: true },
      },
    },
  });
  assert.ok(init.capabilities, "initialize returned no capabilities");
  const commands = init.capabilities.executeCommandProvider?.commands ?? [];
  assert.ok(commands.includes("semcode.findSimilar"), `server commands: ${commands}`);
  await connection.sendNotification("initialized", {});
});

after(async () => {
  if (connection) {
    try {
      await Promise.race([connection.sendRequest("shutdown"), new Promise((r) => setTimeout(r, 5000))]);
      await connection.sendNotification("exit");
    } catch {
      // the server may already be gone
    }
  }
  if (proc && proc.exitCode === null) {
    await Promise.race([new Promise((r) => proc.once("exit", r)), new Promise((r) => setTimeout(r, 5000))]);
    if (proc.exitCode === null) proc.kill("SIGKILL");
  }
  connection?.dispose();
  if (root && !process.env.SEMCODE_KEEP_TMP) fs.rmSync(root, { recursive: true, force: true });
});

test("indexing reports work-done progress and ends", async () => {
  const end = await indexed;
  assert.equal(end.kind, "end");
  assert.ok(progressTitles.some((t) => /index/i.test(t)), `progress titles: ${progressTitles}`);
});

test("settings sent by the extension are accepted (no error message)", () => {
  const errors = messages.filter((m) => m.type === 1);
  assert.deepEqual(errors, []);
});

test("workspace/semanticSearch finds parse_query_string", async () => {
  await indexed;
  const results = await connection.sendRequest("workspace/semanticSearch", {
    query: "parse the query string of a URL into key value pairs",
    limit: 5,
  });
  assert.ok(Array.isArray(results) && results.length > 0, "no results");
  const hit = results.slice(0, 3).find((r) => r.symbol === "parse_query_string");
  assert.ok(hit, `parse_query_string not in the top 3: ${describe(results)}`);
  assert.equal(hit.uri, uriOf("pyutils/urls.py"));
  assert.equal(typeof hit.score, "number");
  assert.equal(typeof hit.preview, "string");
  assert.ok(hit.range.start.line <= 5 && hit.range.end.line >= 5, `range ${JSON.stringify(hit.range)}`);
});

test("workspace/semanticSearch finds TypeScript code", async () => {
  await indexed;
  const results = await connection.sendRequest("workspace/semanticSearch", {
    query: "compute the edit distance between two strings",
    limit: 5,
  });
  assert.ok(results.slice(0, 3).some((r) => r.symbol === "levenshteinDistance"), describe(results));
});

test("workspace/semanticSearch rejects invalid params with -32602", async () => {
  await indexed;
  await assert.rejects(
    connection.sendRequest("workspace/semanticSearch", { query: "x", limit: 0 }),
    (error) => error.code === -32602,
  );
});

test("executeCommand semcode.findSimilar returns locations", async () => {
  await indexed;
  const uri = uriOf("pyutils/checksum.py");
  const range = functionRange("pyutils/checksum.py", "def adler32");
  const locations = await connection.sendRequest("workspace/executeCommand", {
    command: "semcode.findSimilar",
    arguments: [uri, range],
  });
  assert.ok(Array.isArray(locations) && locations.length > 0, `got ${JSON.stringify(locations)}`);
  for (const l of locations) {
    assert.equal(typeof l.uri, "string");
    assert.ok(l.range?.start && l.range?.end);
    assert.ok(!(l.uri === uri && l.range.start.line === range.start.line), "the selection itself was returned");
  }
});

test("textDocument/codeAction offers 'Find similar code'", async () => {
  await indexed;
  const uri = uriOf("pyutils/checksum.py");
  const text = fs.readFileSync(path.join(workspace, "pyutils/checksum.py"), "utf8");
  await connection.sendNotification("textDocument/didOpen", {
    textDocument: { uri, languageId: "python", version: 1, text },
  });
  const range = functionRange("pyutils/checksum.py", "def crc8");
  const cursor = { start: { line: range.start.line + 2, character: 4 }, end: { line: range.start.line + 2, character: 4 } };
  const actions = await connection.sendRequest("textDocument/codeAction", {
    textDocument: { uri },
    range: cursor,
    context: { diagnostics: [] },
  });
  const action = (actions ?? []).find((a) => a.title === "Find similar code");
  assert.ok(action, `actions: ${JSON.stringify(actions)}`);
  const command = typeof action.command === "string" ? action : action.command;
  assert.equal(command.command, "semcode.findSimilar");
  assert.equal(command.arguments[0], uri);
  const locations = await connection.sendRequest("workspace/executeCommand", command);
  assert.ok(locations.length > 0, "the action's command returned no locations");
});

test("semcode/status reports the index", async () => {
  await indexed;
  const status = await connection.sendRequest("semcode/status", {});
  assert.equal(status.state, "ready");
  assert.ok(status.files >= 6, `files=${status.files}`);
  assert.ok(status.chunks >= 6, `chunks=${status.chunks}`);
  assert.ok(status.dimension > 0, `dimension=${status.dimension}`);
  assert.ok(Array.isArray(status.workspaceFolders));
});
