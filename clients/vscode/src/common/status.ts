/** The status bar item: indexing progress, then the size of the index. */
import * as vscode from "vscode";
import type { ProgressToken } from "vscode-languageclient";
import { Commands } from "./constants";
import { errorMessage, log } from "./log";
import { type IndexStatus, StatusRequest } from "./protocol";
import type { ProgressParams, ServerManager, ServerState } from "./server";

const FAST_POLL_MS = 2_000;
const SLOW_POLL_MS = 30_000;

export class IndexStatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private readonly disposables: { dispose(): unknown }[] = [];
  private readonly indexTokens = new Set<ProgressToken>();
  private progress: { percentage?: number | undefined; message?: string | undefined } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private _status: IndexStatus | undefined;

  constructor(private readonly manager: ServerManager) {
    this.item = vscode.window.createStatusBarItem("semcode.status", vscode.StatusBarAlignment.Right, 100);
    this.item.name = "semcode";
    this.item.command = Commands.showStatus;
    this.disposables.push(
      this.item,
      manager.onDidChangeState((state) => {
        this.onServerState(state);
      }),
      manager.onDidProgress(({ token, params }) => {
        this.onProgress(token, params);
      }),
    );
    this.onServerState(manager.state);
    this.item.show();
  }

  /** The last index status received from the server. */
  get status(): IndexStatus | undefined {
    return this._status;
  }

  get text(): string {
    return this.item.text;
  }

  private onServerState(state: ServerState): void {
    this.indexTokens.clear();
    this.progress = undefined;
    this._status = undefined;
    this.render();
    if (state === "running") {
      void this.refresh();
    } else {
      this.schedule(undefined);
    }
  }

  private onProgress(token: ProgressToken, params: ProgressParams): void {
    if (params.kind === "begin") {
      if (!/index/i.test(params.title)) {
        return;
      }
      this.indexTokens.add(token);
      this.progress = { percentage: params.percentage, message: params.message };
    } else if (!this.indexTokens.has(token)) {
      return;
    } else if (params.kind === "report") {
      this.progress = {
        percentage: params.percentage ?? this.progress?.percentage,
        message: params.message ?? this.progress?.message,
      };
    } else {
      this.indexTokens.delete(token);
      if (this.indexTokens.size === 0) {
        this.progress = undefined;
      }
      void this.refresh();
    }
    this.render();
  }

  /** Asks the server for `semcode/status` and updates the item. */
  async refresh(): Promise<IndexStatus | undefined> {
    const client = this.manager.languageClient;
    if (!client) {
      return undefined;
    }
    try {
      this._status = await client.sendRequest(StatusRequest, {});
    } catch (error) {
      log.debug(`semcode/status failed: ${errorMessage(error)}`);
    }
    this.render();
    const busy = this._status === undefined || this._status.state === "starting" || this._status.state === "indexing";
    this.schedule(busy ? FAST_POLL_MS : SLOW_POLL_MS);
    return this._status;
  }

  private schedule(delay: number | undefined): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (delay !== undefined) {
      this.timer = setTimeout(() => void this.refresh(), delay);
    }
  }

  private render(): void {
    const item = this.item;
    const tooltip = new vscode.MarkdownString(undefined, true);
    item.backgroundColor = undefined;
    const state = this.manager.state;
    const status = this._status;
    if (state === "untrusted") {
      item.text = "$(shield) semcode";
      tooltip.appendMarkdown("semcode is disabled in restricted mode.");
    } else if (state === "noWorkspace") {
      item.text = "$(search) semcode";
      tooltip.appendMarkdown("semcode: open a folder to index it.");
    } else if (state === "failed") {
      item.text = "$(error) semcode";
      item.backgroundColor = new vscode.ThemeColor("statusBarItem.errorBackground");
      tooltip.appendMarkdown(`semcode server failed: ${this.manager.lastError ?? "unknown error"}`);
    } else if (state === "starting" || state === "stopped") {
      item.text = "$(loading~spin) semcode";
      tooltip.appendMarkdown("semcode: starting the server…");
    } else if (this.progress || status?.state === "indexing" || status?.state === "starting") {
      const done = status?.progress?.done;
      const total = status?.progress?.total;
      const fromMessage = this.progress?.message;
      const count = fromMessage ?? (done !== undefined && total !== undefined ? `${done}/${total} files` : undefined);
      const pct = this.progress?.percentage;
      item.text = `$(sync~spin) semcode ${count ?? (pct !== undefined ? `${pct}%` : "indexing")}`;
      tooltip.appendMarkdown(`semcode: indexing the workspace${count ? ` (${count})` : ""}…`);
    } else if (status?.state === "error") {
      item.text = "$(warning) semcode";
      item.backgroundColor = new vscode.ThemeColor("statusBarItem.warningBackground");
      tooltip.appendMarkdown(`semcode index error: ${status.lastError ?? "unknown error"}`);
    } else if (status) {
      item.text = `$(search) ${status.chunks} chunks`;
      tooltip.appendMarkdown(
        `**semcode** index: ${status.files} files, ${status.chunks} chunks  \n` +
          `model: ${status.model ?? "default"}${status.dimension ? ` (${status.dimension} dims)` : ""}`,
      );
    } else {
      item.text = "$(search) semcode";
      tooltip.appendMarkdown("semcode is running.");
    }
    tooltip.appendMarkdown("\n\nClick for the index status.");
    item.tooltip = tooltip;
  }

  dispose(): void {
    this.schedule(undefined);
    for (const d of this.disposables) {
      d.dispose();
    }
  }
}
