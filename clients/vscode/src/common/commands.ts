/** The commands of the "semcode" category, and showing "find similar" results. */
import * as vscode from "vscode";
import { ExecuteCommandRequest, type Location as LspLocation } from "vscode-languageclient";
import type { LanguageClient } from "vscode-languageclient/node";
import { Commands, ServerCommands } from "./constants";
import { errorMessage, getLogChannel, log } from "./log";
import type { IndexStatus, ReindexResult } from "./protocol";
import { searchWorkspace } from "./search";
import type { ServerManager } from "./server";
import type { IndexStatusBar } from "./status";

/** Shows `semcode.findSimilar` results in the peek references view. */
export async function showSimilar(
  args: unknown[],
  result: LspLocation[] | null | undefined,
  client: LanguageClient,
): Promise<void> {
  const locations = (result ?? []).map((l) => client.protocol2CodeConverter.asLocation(l));
  if (locations.length === 0) {
    void vscode.window.showInformationMessage("semcode: no similar code found.");
    return;
  }
  const [uriArg, rangeArg] = args as [unknown, unknown];
  let anchor: vscode.Uri;
  let position: vscode.Position;
  if (typeof uriArg === "string" && isLspRange(rangeArg)) {
    anchor = vscode.Uri.parse(uriArg);
    position = new vscode.Position(rangeArg.start.line, rangeArg.start.character);
  } else {
    const first = locations[0];
    if (!first) {
      return;
    }
    anchor = first.uri;
    position = first.range.start;
  }
  try {
    await vscode.commands.executeCommand("editor.action.showReferences", anchor, position, locations);
  } catch (error) {
    log.warn(`Could not show the similar code in the peek view: ${errorMessage(error)}`);
  }
}

function isLspRange(value: unknown): value is { start: { line: number; character: number } } {
  if (typeof value !== "object" || value === null || !("start" in value)) {
    return false;
  }
  const start: unknown = value.start;
  return typeof start === "object" && start !== null && "line" in start && "character" in start;
}

/** "Find Similar Code": the selection (or the symbol under the cursor) → peek view of similar code. */
async function findSimilarCode(
  manager: ServerManager,
  uri?: vscode.Uri,
  range?: vscode.Range,
): Promise<LspLocation[] | undefined> {
  const editor = vscode.window.activeTextEditor;
  const target = uri ?? editor?.document.uri;
  const selection = range ?? editor?.selection;
  if (!target || !selection) {
    void vscode.window.showInformationMessage("semcode: select some code (or put the cursor in a function) first.");
    return undefined;
  }
  const client = await manager.readyClient();
  if (!client) {
    return undefined;
  }
  // Runs the server command through the language client, whose middleware shows the results.
  return vscode.commands.executeCommand<LspLocation[] | undefined>(
    ServerCommands.findSimilar,
    client.code2ProtocolConverter.asUri(target),
    client.code2ProtocolConverter.asRange(selection),
  );
}

async function reindexWorkspace(manager: ServerManager, statusBar: IndexStatusBar, options?: { full?: boolean }) {
  const client = await manager.readyClient();
  if (!client) {
    return undefined;
  }
  try {
    const result = (await client.sendRequest(ExecuteCommandRequest.type, {
      command: ServerCommands.reindex,
      arguments: options?.full ? [{ full: true }] : [],
    })) as ReindexResult | null;
    void statusBar.refresh();
    if (result) {
      void vscode.window.showInformationMessage(
        `semcode: indexed ${result.files} files (${result.chunks} chunks).`,
      );
    }
    return result ?? undefined;
  } catch (error) {
    void vscode.window.showErrorMessage(`semcode: reindexing failed: ${errorMessage(error)}`);
    return undefined;
  }
}

function describeStatus(status: IndexStatus): string {
  const model = status.model ? `${status.model}${status.dimension ? ` (${status.dimension} dims)` : ""}` : "default model";
  const progress = status.progress ? `, ${status.progress.done}/${status.progress.total} files done` : "";
  const error = status.lastError ? ` Last error: ${status.lastError}` : "";
  return `semcode index ${status.state}${progress}: ${status.files} files, ${status.chunks} chunks; ${model}.` +
    (status.indexPath ? ` Stored in ${status.indexPath}.` : "") + error;
}

async function showStatus(manager: ServerManager, statusBar: IndexStatusBar): Promise<IndexStatus | undefined> {
  const client = await manager.readyClient();
  if (!client) {
    return undefined;
  }
  const status = await statusBar.refresh();
  if (!status) {
    void vscode.window.showErrorMessage("semcode: the server did not answer semcode/status.");
    return undefined;
  }
  const show = status.state === "error" ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
  void show(describeStatus(status), "Reindex", "Show Output").then((choice) => {
    if (choice === "Reindex") {
      return vscode.commands.executeCommand(Commands.reindex);
    }
    if (choice === "Show Output") {
      getLogChannel().show();
    }
    return undefined;
  });
  return status;
}

export function registerCommands(manager: ServerManager, statusBar: IndexStatusBar): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand(Commands.search, async (query?: unknown) => {
      const client = await manager.readyClient();
      return client ? searchWorkspace(client, typeof query === "string" ? query : undefined) : undefined;
    }),
    vscode.commands.registerCommand(Commands.findSimilar, (uri?: unknown, range?: unknown) =>
      findSimilarCode(
        manager,
        uri instanceof vscode.Uri ? uri : undefined,
        range instanceof vscode.Range ? range : undefined,
      ),
    ),
    vscode.commands.registerCommand(Commands.reindex, (options?: { full?: boolean }) =>
      reindexWorkspace(manager, statusBar, options),
    ),
    vscode.commands.registerCommand(Commands.showStatus, () => showStatus(manager, statusBar)),
    vscode.commands.registerCommand(Commands.restart, () => manager.restart()),
    vscode.commands.registerCommand(Commands.showOutput, () => {
      getLogChannel().show();
    }),
  ];
}
