/** semcode: semantic code search. Entry point; the work is done in ./common. */
import * as vscode from "vscode";
import { registerCommands, showSimilar } from "./common/commands";
import { RESTART_DEBOUNCE_MS } from "./common/constants";
import { getLogChannel, log } from "./common/log";
import { onDidChangePythonInterpreter } from "./common/python";
import { getLastSearch, onDidShowResults } from "./common/search";
import { ServerManager } from "./common/server";
import { affectsAny, LIVE_SETTINGS, RESTART_SETTINGS } from "./common/settings";
import { IndexStatusBar } from "./common/status";

/**
 * What `activate` returns: semcode's API for other extensions. The end-to-end test drives the extension
 * through it from a separate test extension (test/e2e/extension), so no test code ships here.
 */
export interface SemcodeApi {
  readonly server: ServerManager;
  readonly statusBar: IndexStatusBar;
  readonly getLastSearch: typeof getLastSearch;
  readonly onDidShowResults: typeof onDidShowResults;
}

let manager: ServerManager | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<SemcodeApi> {
  const channel = getLogChannel();
  context.subscriptions.push(channel);
  const version = (context.extension.packageJSON as { version?: string }).version ?? "?";
  log.info(`Activating semcode ${version} in VS Code ${vscode.version}.`);

  const server = new ServerManager({ showSimilar });
  manager = server;
  const statusBar = new IndexStatusBar(server);
  context.subscriptions.push(server, statusBar, ...registerCommands(server, statusBar));

  // Settings: restart for the ones the server reads at start-up (batched), notify for the others.
  let restartTimer: NodeJS.Timeout | undefined;
  const scheduleRestart = (reason: string): void => {
    log.info(`${reason}: restarting the server.`);
    if (restartTimer) {
      clearTimeout(restartTimer);
    }
    restartTimer = setTimeout(() => {
      restartTimer = undefined;
      void server.restart();
    }, RESTART_DEBOUNCE_MS);
  };
  context.subscriptions.push(
    {
      dispose: () => {
        if (restartTimer) {
          clearTimeout(restartTimer);
        }
      },
    },
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (affectsAny(event, RESTART_SETTINGS)) {
        scheduleRestart("semcode settings changed");
      } else if (affectsAny(event, LIVE_SETTINGS)) {
        void server.notifyConfigurationChanged();
      }
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      scheduleRestart("Workspace trusted");
    }),
    vscode.workspace.onDidChangeWorkspaceFolders(() => {
      if (server.state === "noWorkspace") {
        scheduleRestart("A folder was opened");
      }
    }),
  );
  void onDidChangePythonInterpreter(() => {
    if (server.source === "pythonExtension" || server.state === "failed") {
      scheduleRestart("The Python interpreter changed");
    }
  }).then((d) => d && context.subscriptions.push(d));

  await server.start();

  return { server, statusBar, getLastSearch, onDidShowResults };
}

export async function deactivate(): Promise<void> {
  await manager?.stop();
  manager = undefined;
}
