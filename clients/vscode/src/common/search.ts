/** "Search Workspace Semantically": a QuickPick that queries the server as you type. */
import * as path from "node:path";
import * as vscode from "vscode";
import type { LanguageClient } from "vscode-languageclient/node";
import { SEARCH_DEBOUNCE_MS } from "./constants";
import { errorMessage, log } from "./log";
import { type SearchResult, SemanticSearchRequest } from "./protocol";

const RESULT_LIMIT = 30;

export interface ResultItem extends vscode.QuickPickItem {
  result: SearchResult;
}

/** The last results the QuickPick showed (for the status command and tests). */
export interface SearchSnapshot {
  query: string;
  results: SearchResult[];
}

let lastSnapshot: SearchSnapshot | undefined;
const snapshotEmitter = new vscode.EventEmitter<SearchSnapshot>();
export const onDidShowResults = snapshotEmitter.event;
export function getLastSearch(): SearchSnapshot | undefined {
  return lastSnapshot;
}

const KIND_ICONS: Record<string, string> = {
  function: "symbol-function",
  method: "symbol-method",
  class: "symbol-class",
  interface: "symbol-interface",
  struct: "symbol-struct",
  enum: "symbol-enum",
  module: "symbol-module",
  variable: "symbol-variable",
  constant: "symbol-constant",
  type: "symbol-type-parameter",
  property: "symbol-property",
  field: "symbol-field",
  constructor: "symbol-constructor",
};

function displayPath(uri: vscode.Uri): string {
  return vscode.workspace.asRelativePath(uri, (vscode.workspace.workspaceFolders?.length ?? 0) > 1);
}

function previewLine(preview: string): string {
  const lines = preview.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  const text = lines.slice(0, 3).join(" ⏎ ");
  return text.length > 160 ? `${text.slice(0, 157)}…` : text;
}

export function toItem(result: SearchResult): ResultItem {
  const uri = vscode.Uri.parse(result.uri);
  const icon = KIND_ICONS[(result.kind ?? "").toLowerCase()] ?? "symbol-misc";
  const name = result.namePath ?? result.symbol ?? path.basename(uri.path);
  return {
    label: `$(${icon}) ${name}`,
    description: `${displayPath(uri)}:${result.range.start.line + 1}`,
    detail: `${result.score.toFixed(2)}  ${previewLine(result.preview)}`,
    alwaysShow: true, // results match by meaning, not by the label: never let the QuickPick filter them
    result,
    buttons: [{ iconPath: new vscode.ThemeIcon("split-horizontal"), tooltip: "Open to the Side" }],
  };
}

export async function openResult(result: SearchResult, sideBySide = false): Promise<vscode.TextEditor> {
  const uri = vscode.Uri.parse(result.uri);
  const { start, end } = result.range;
  const selection = new vscode.Range(start.line, start.character, end.line, end.character);
  const editor = await vscode.window.showTextDocument(uri, {
    selection,
    preview: true,
    viewColumn: sideBySide ? vscode.ViewColumn.Beside : undefined,
  });
  editor.revealRange(selection, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  return editor;
}

/**
 * Shows the search QuickPick. Resolves with the result the user opened, or undefined when the
 * picker was dismissed.
 */
export function searchWorkspace(client: LanguageClient, initialQuery?: string): Promise<SearchResult | undefined> {
  const picker = vscode.window.createQuickPick<ResultItem>();
  picker.title = "semcode: Search Workspace Semantically";
  picker.placeholder = "Describe the code you are looking for, e.g. “parse the query string of a URL”";
  picker.matchOnDescription = false;
  picker.matchOnDetail = false;
  picker.ignoreFocusOut = false;

  const selection = vscode.window.activeTextEditor?.selection;
  const selected = selection && !selection.isEmpty && selection.isSingleLine
    ? vscode.window.activeTextEditor?.document.getText(selection)
    : undefined;
  picker.value = initialQuery ?? selected ?? "";

  let timer: NodeJS.Timeout | undefined;
  let pending: vscode.CancellationTokenSource | undefined;
  let sequence = 0;
  let chosen: SearchResult | undefined;
  let opening: Promise<unknown> | undefined;

  const run = async (query: string): Promise<void> => {
    pending?.cancel();
    pending?.dispose();
    pending = undefined;
    const seq = ++sequence;
    if (query.trim().length === 0) {
      picker.items = [];
      picker.busy = false;
      picker.title = "semcode: Search Workspace Semantically";
      return;
    }
    const cts = new vscode.CancellationTokenSource();
    pending = cts;
    picker.busy = true;
    try {
      const results = (await client.sendRequest(SemanticSearchRequest, { query, limit: RESULT_LIMIT }, cts.token)) ?? [];
      if (seq !== sequence) {
        return; // a newer query is on its way
      }
      picker.items = results.map(toItem);
      const partial = results.some((r) => r.partial === true);
      picker.title =
        `semcode: ${results.length} result${results.length === 1 ? "" : "s"}` +
        (partial ? " (indexing still in progress: results may be incomplete)" : "");
      lastSnapshot = { query, results };
      snapshotEmitter.fire(lastSnapshot);
    } catch (error) {
      if (seq === sequence && !cts.token.isCancellationRequested) {
        log.warn(`Semantic search failed: ${errorMessage(error)}`);
        picker.items = [];
        picker.title = `semcode: search failed: ${errorMessage(error)}`;
      }
    } finally {
      if (seq === sequence) {
        picker.busy = false;
      }
    }
  };

  return new Promise((resolve) => {
    const disposables: vscode.Disposable[] = [
      picker.onDidChangeValue((value) => {
        if (timer) {
          clearTimeout(timer);
        }
        timer = setTimeout(() => void run(value), SEARCH_DEBOUNCE_MS);
      }),
      picker.onDidAccept(() => {
        const item = picker.selectedItems[0] ?? picker.activeItems[0];
        if (item) {
          chosen = item.result;
          opening = openResult(item.result);
          picker.hide();
        }
      }),
      picker.onDidTriggerItemButton(({ item }) => {
        chosen = item.result;
        opening = openResult(item.result, true);
        picker.hide();
      }),
      picker.onDidHide(() => {
        if (timer) {
          clearTimeout(timer);
        }
        pending?.cancel();
        pending?.dispose();
        for (const d of disposables) {
          d.dispose();
        }
        picker.dispose();
        void Promise.resolve(opening)
          .catch((error: unknown) => {
            log.warn(`Could not open the result: ${errorMessage(error)}`);
          })
          .then(() => {
            resolve(chosen);
          });
      }),
    ];
    picker.show();
    if (picker.value) {
      void run(picker.value);
    }
  });
}
