/**
 * The end-to-end test extension ("semcode-e2e"): installed next to semcode.vsix only by the driver
 * (test/e2e/run.mjs), never shipped. It takes semcode's public API (what `activate` returns), runs the
 * checks inside real VS Code through the extension's real commands (or VS Code's own provider
 * commands), and writes the results to the JSON file named by SEMCODE_VSCODE_E2E.
 */
import * as fs from "node:fs";
import * as vscode from "vscode";
import type { Location as LspLocation } from "vscode-languageclient";
import { Commands, EXTENSION_ID, ServerCommands } from "../../../../src/common/constants";
import type { IndexStatus, ReindexResult, SearchResult } from "../../../../src/common/protocol";
import { SemanticSearchRequest } from "../../../../src/common/protocol";
import type { SearchSnapshot } from "../../../../src/common/search";
import type { SemcodeApi } from "../../../../src/extension";

const channel = vscode.window.createOutputChannel("semcode e2e", { log: true });
const log = {
  info: (message: string): void => {
    channel.info(message);
  },
  error: (message: string): void => {
    channel.error(message);
  },
};

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  context.subscriptions.push(channel);
  const resultsFile = process.env.SEMCODE_VSCODE_E2E;
  if (!resultsFile) {
    log.error("SEMCODE_VSCODE_E2E is not set: nothing to do");
    return;
  }
  // extensionDependencies: semcode is activated first, so this resolves to its finished API.
  const semcode = vscode.extensions.getExtension<SemcodeApi>(EXTENSION_ID);
  if (!semcode) {
    fs.writeFileSync(resultsFile, JSON.stringify({ done: true, passed: 0, failed: 1, checks: [
      { name: "semcode is installed", ok: false, detail: `${EXTENSION_ID} not found`, ms: 0 }] }, null, 2));
    return;
  }
  const api = semcode.isActive ? semcode.exports : await semcode.activate();
  void runEndToEndChecks(api, resultsFile);
}

export function deactivate(): void {
  // nothing to release: the checks end on their own
}

interface Check {
  name: string;
  ok: boolean;
  detail: string;
  ms: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await sleep(250);
  }
}

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) {
    throw new Error(message);
  }
}

function fileOf(uri: string): string {
  return vscode.Uri.parse(uri).path.split("/").slice(-2).join("/");
}

function summary(results: SearchResult[]): string {
  return results.slice(0, 5).map((r) => `${r.symbol ?? "?"}@${fileOf(r.uri)}:${r.range.start.line + 1} (${r.score.toFixed(3)})`).join(", ");
}

/** The range of the function whose definition line contains `marker`, up to the next blank line. */
function functionRange(document: vscode.TextDocument, marker: string): vscode.Range {
  const start = document.getText().split("\n").findIndex((line) => line.includes(marker));
  assert(start >= 0, `'${marker}' not found in ${document.uri.fsPath}`);
  let end = start + 1;
  while (end < document.lineCount && document.lineAt(end).text.trim() !== "") {
    end++;
  }
  return new vscode.Range(start, 0, end - 1, document.lineAt(end - 1).text.length);
}

async function runEndToEndChecks(api: SemcodeApi, resultsFile: string): Promise<void> {
  const checks: Check[] = [];
  const started = Date.now();
  const check = async (name: string, body: () => Promise<string>): Promise<void> => {
    const t0 = Date.now();
    try {
      const detail = await body();
      checks.push({ name, ok: true, detail, ms: Date.now() - t0 });
      log.info(`[e2e] PASS ${name}: ${detail}`);
    } catch (error) {
      checks.push({ name, ok: false, detail: errorMessage(error), ms: Date.now() - t0 });
      log.error(`[e2e] FAIL ${name}: ${errorMessage(error)}`);
    }
  };
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  let status: IndexStatus | undefined;

  if (!vscode.workspace.isTrusted) {
    // Restricted mode: nothing may run. The driver answers the trust dialog after reading this part.
    await check("restricted mode: the server is not started", () => {
      assert(api.server.state === "untrusted", `server state ${api.server.state}`);
      assert(api.server.languageClient === undefined, "a client exists");
      assert(api.statusBar.text.includes("$(shield)"), `status bar: ${api.statusBar.text}`);
      return Promise.resolve(`state ${api.server.state}, status bar "${api.statusBar.text}"`);
    });
    fs.writeFileSync(`${resultsFile}.untrusted.json`, JSON.stringify({ done: true, checks }, null, 2));
    await check("trusting the workspace starts the server", async () => {
      await waitFor("workspace trust", 120_000, () => (vscode.workspace.isTrusted ? true : undefined));
      await waitFor("the server", 60_000, () => (api.server.state === "running" ? true : undefined));
      return "started after trust was granted";
    });
  }

  await check("server starts", async () => {
    await waitFor("the server", 60_000, () => (api.server.state === "running" ? true : api.server.state === "failed" ? (() => {
      throw new Error(`server failed: ${api.server.lastError ?? "?"}`);
    })() : undefined));
    return `source=${api.server.source ?? "?"}`;
  });

  await check("index is built (status bar)", async () => {
    status = await waitFor("the index", 240_000, async () => {
      assert(api.server.state === "running", `server is ${api.server.state}`);
      const s = await api.statusBar.refresh();
      return s && s.state === "ready" && s.chunks > 0 ? s : undefined;
    });
    const text = await waitFor("the status bar", 10_000, () => (/chunks/.test(api.statusBar.text) ? api.statusBar.text : undefined));
    return `${status.files} files, ${status.chunks} chunks; status bar "${text}"`;
  });

  await check("workspace/semanticSearch finds parse_query_string", async () => {
    const client = api.server.languageClient;
    assert(client, "no client");
    const results = (await client.sendRequest(SemanticSearchRequest, {
      query: "parse the query string of a URL into key value pairs",
      limit: 5,
    })) ?? [];
    const hit = results.slice(0, 3).find((r) => r.symbol?.includes("parse_query_string") ?? r.preview.includes("def parse_query_string"));
    assert(hit, `parse_query_string not in the top 3: ${summary(results)}`);
    return summary(results);
  });

  await check("Search Workspace Semantically (QuickPick) opens the hit", async () => {
    const query = "compute the edit distance between two strings";
    const shown = new Promise<SearchSnapshot>((resolve) => {
      const sub = api.onDidShowResults((snapshot) => {
        if (snapshot.query === query) {
          sub.dispose();
          resolve(snapshot);
        }
      });
    });
    assert(api.server.state === "running", `server is ${api.server.state}`);
    const picked = vscode.commands.executeCommand<SearchResult | undefined>(Commands.search, query);
    const snapshot = await Promise.race([shown, sleep(30_000).then(() => undefined)]);
    assert(snapshot, "the QuickPick showed no results within 30 s");
    const top = snapshot.results[0];
    assert(top, "no results");
    await sleep(300); // let the QuickPick render its items before accepting
    await vscode.commands.executeCommand("workbench.action.acceptSelectedQuickOpenItem");
    const result = await Promise.race([picked, sleep(15_000).then(() => "timeout" as const)]);
    assert(result !== "timeout", "accepting the QuickPick item did not open anything");
    assert(result, "the QuickPick closed without a result");
    const editor = vscode.window.activeTextEditor;
    assert(editor, "no active editor");
    assert(editor.document.uri.toString() === vscode.Uri.parse(result.uri).toString(),
      `active editor ${editor.document.uri.toString()} is not ${result.uri}`);
    assert(editor.selection.start.line === result.range.start.line, "selection does not start at the result");
    assert(!editor.selection.isEmpty, "the result range is not selected");
    assert(snapshot.results.slice(0, 3).some((r) => /levenshtein/i.test(r.symbol ?? r.preview)),
      `levenshteinDistance not in the top 3: ${summary(snapshot.results)}`);
    return `opened ${fileOf(result.uri)}:${result.range.start.line + 1} (${result.symbol ?? "?"}); top: ${summary(snapshot.results)}`;
  });

  let checksumDoc: vscode.TextDocument | undefined;
  let adlerRange: vscode.Range | undefined;
  await check("Find Similar Code (selection) returns locations", async () => {
    assert(folder, "no workspace folder");
    checksumDoc = await vscode.workspace.openTextDocument(vscode.Uri.joinPath(folder, "pyutils", "checksum.py"));
    const editor = await vscode.window.showTextDocument(checksumDoc);
    adlerRange = functionRange(checksumDoc, "def adler32");
    editor.selection = new vscode.Selection(adlerRange.start, adlerRange.end);
    const locations = await vscode.commands.executeCommand<LspLocation[] | undefined>(Commands.findSimilar);
    assert(locations && locations.length > 0, "no locations");
    const self = locations.find((l) => l.uri === checksumDoc?.uri.toString() && l.range.start.line === adlerRange?.start.line);
    assert(!self, "the selection itself was returned");
    return `${locations.length} locations: ${locations.slice(0, 4).map((l) => `${fileOf(l.uri)}:${l.range.start.line + 1}`).join(", ")}`;
  });

  await check("code action 'Find similar code' is offered and runs", async () => {
    assert(checksumDoc && adlerRange, "no document");
    const cursor = new vscode.Range(adlerRange.start.translate(1, 4), adlerRange.start.translate(1, 4));
    const actions = await vscode.commands.executeCommand<(vscode.CodeAction | vscode.Command)[]>(
      "vscode.executeCodeActionProvider", checksumDoc.uri, cursor);
    const action = actions.find((a) => a.title === "Find similar code");
    assert(action, `not offered; got: ${actions.map((a) => a.title).join(", ")}`);
    const command = "command" in action && typeof action.command === "object" ? action.command : (action as vscode.Command);
    assert(command.command === ServerCommands.findSimilar, `unexpected command ${command.command}`);
    const locations = await vscode.commands.executeCommand<LspLocation[] | undefined>(command.command, ...((command.arguments ?? []) as unknown[]));
    assert(locations && locations.length > 0, "the action's command returned no locations");
    return `${actions.length} actions; command returned ${locations.length} locations`;
  });

  await check("Show Index Status", async () => {
    const s = await vscode.commands.executeCommand<IndexStatus | undefined>(Commands.showStatus);
    assert(s, "no status");
    assert(s.state === "ready", `state ${s.state}`);
    assert(s.files >= 5 && s.chunks >= 5, `files=${s.files} chunks=${s.chunks}`);
    return `${s.state}: ${s.files} files, ${s.chunks} chunks, model ${s.model ?? "?"} (${s.dimension ?? "?"} dims)`;
  });

  await check("Reindex Workspace", async () => {
    const r = await vscode.commands.executeCommand<ReindexResult | undefined>(Commands.reindex);
    assert(r && r.chunks > 0, `reindex returned ${JSON.stringify(r)}`);
    return `${r.files} files, ${r.chunks} chunks`;
  });

  await check("changing semcode.hybrid applies without a restart", async () => {
    const client = api.server.languageClient;
    assert(client, "no client");
    const config = vscode.workspace.getConfiguration("semcode");
    await config.update("hybrid", false, vscode.ConfigurationTarget.Workspace);
    await sleep(1500); // past the restart debounce: a restart would replace the client
    assert(api.server.languageClient === client && api.server.state === "running", "the server was restarted");
    const results = (await client.sendRequest(SemanticSearchRequest, { query: "checksum of bytes", limit: 3 })) ?? [];
    await config.update("hybrid", undefined, vscode.ConfigurationTarget.Workspace);
    assert(results.length > 0, "no results with hybrid=false");
    return `same client; vector-only search: ${summary(results)}`;
  });

  await check("a wrong semcode.path fails with a fix, and the server recovers", async () => {
    const config = vscode.workspace.getConfiguration("semcode");
    await config.update("path", "/nonexistent/bin/semcode", vscode.ConfigurationTarget.Workspace);
    await waitFor("the failure", 30_000, () => (api.server.state === "failed" ? true : undefined));
    const error = api.server.lastError ?? "";
    assert(/semcode\.path.*does not exist/.test(error), `lastError: ${error}`);
    const failedText = api.statusBar.text;
    assert(failedText.includes("$(error)"), `status bar: ${failedText}`);
    await sleep(2000); // leave the notification up for the driver to see
    await config.update("path", undefined, vscode.ConfigurationTarget.Workspace);
    await waitFor("the restart", 60_000, () => (api.server.state === "running" ? true : undefined));
    const s = await waitFor("the index", 120_000, async () => {
      const st = await api.statusBar.refresh();
      return st && st.state === "ready" && st.chunks > 0 ? st : undefined;
    });
    if (folder) {
      fs.rmSync(vscode.Uri.joinPath(folder, ".vscode").fsPath, { recursive: true, force: true });
    }
    return `failed with "${error}" (status bar "${failedText}"), then back: ${s.chunks} chunks`;
  });

  await vscode.commands.executeCommand("workbench.action.closeAllEditors");
  await vscode.commands.executeCommand("notifications.clearAll");
  const passed = checks.filter((c) => c.ok).length;
  const report = {
    done: true,
    vscodeVersion: vscode.version,
    passed,
    failed: checks.length - passed,
    ms: Date.now() - started,
    statusBarText: api.statusBar.text,
    status,
    checks,
  };
  fs.writeFileSync(resultsFile, JSON.stringify(report, null, 2));
  log.info(`[e2e] ${passed} passed, ${checks.length - passed} failed; wrote ${resultsFile}`);
}
