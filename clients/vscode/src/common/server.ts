/** Starting, stopping and restarting the semcode language server. */
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  LanguageClient,
  type LanguageClientOptions,
  type Middleware,
  RevealOutputChannelOn,
  type ServerOptions,
  State,
  type WorkDoneProgressBegin,
  type WorkDoneProgressEnd,
  type WorkDoneProgressReport,
} from "vscode-languageclient/node";
import type { Location as LspLocation, ProgressToken } from "vscode-languageclient";
import { CLIENT_ID, CLIENT_NAME, CONFIG_SECTION, ServerCommands } from "./constants";
import { createStderrLogger, errorMessage, getLogChannel, log } from "./log";
import { getPythonExtensionInterpreter } from "./python";
import {
  checkInterpreter,
  findOnPath,
  type FixAction,
  pipInstallCommand,
  resolveServerCommand,
  type ServerCommand,
  ServerNotFoundError,
  type ServerSource,
} from "./resolve";
import { getExtensionSettings, getServerSettings } from "./settings";

export type ServerState = "stopped" | "starting" | "running" | "failed" | "untrusted" | "noWorkspace";

export type ProgressParams = WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd;

export interface ServerHooks {
  /** Shows the locations returned by `semcode.findSimilar` (however the command was run). */
  showSimilar(args: unknown[], result: LspLocation[] | null | undefined, client: LanguageClient): Promise<void>;
}

export class ServerManager implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private queue: Promise<void> = Promise.resolve();
  private _state: ServerState = "stopped";
  private _source: ServerSource | undefined;
  private _lastError: string | undefined;
  private readonly stateEmitter = new vscode.EventEmitter<ServerState>();
  private readonly progressEmitter = new vscode.EventEmitter<{ token: ProgressToken; params: ProgressParams }>();
  private readonly clientDisposables: { dispose(): unknown }[] = [];

  /** Fires when the server starts, stops or fails. */
  readonly onDidChangeState = this.stateEmitter.event;
  /** Fires for every work-done progress notification of the server (e.g. indexing). */
  readonly onDidProgress = this.progressEmitter.event;

  constructor(private readonly hooks: ServerHooks) {}

  get state(): ServerState {
    return this._state;
  }

  /** Where the running server was found (`semcode.path`, interpreter, Python extension, PATH). */
  get source(): ServerSource | undefined {
    return this._source;
  }

  get lastError(): string | undefined {
    return this._lastError;
  }

  get languageClient(): LanguageClient | undefined {
    return this._state === "running" ? this.client : undefined;
  }

  private setState(state: ServerState): void {
    if (this._state !== state) {
      this._state = state;
      this.stateEmitter.fire(state);
    }
  }

  /** Serialises start/stop so that overlapping restarts never run two servers. */
  private enqueue(task: () => Promise<void>): Promise<void> {
    this.queue = this.queue.then(task, task);
    return this.queue;
  }

  start(): Promise<void> {
    return this.enqueue(() => this.doStart());
  }

  stop(): Promise<void> {
    return this.enqueue(() => this.doStop());
  }

  restart(): Promise<void> {
    return this.enqueue(async () => {
      await this.doStop();
      await this.doStart();
    });
  }

  /** The running client; otherwise tells the user why there is none and returns undefined. */
  async readyClient(): Promise<LanguageClient | undefined> {
    await this.queue;
    if (this._state === "running" && this.client) {
      return this.client;
    }
    switch (this._state) {
      case "untrusted": {
        const choice = await vscode.window.showWarningMessage(
          "semcode does not run in restricted mode. Trust this workspace to enable semantic search.",
          "Manage Workspace Trust",
        );
        if (choice) {
          await vscode.commands.executeCommand("workbench.trust.manage");
        }
        break;
      }
      case "noWorkspace":
        void vscode.window.showInformationMessage("semcode: open a folder to search it semantically.");
        break;
      default: {
        const choice = await vscode.window.showErrorMessage(
          `semcode: the server is not running${this._lastError ? `: ${this._lastError}` : "."}`,
          "Restart Server",
          "Show Output",
        );
        if (choice === "Restart Server") {
          await this.restart();
          return this._state === "running" ? this.client : undefined;
        }
        if (choice === "Show Output") {
          getLogChannel().show();
        }
      }
    }
    return undefined;
  }

  /** Tells the server that settings it re-reads on the fly changed (hybrid, references). */
  async notifyConfigurationChanged(): Promise<void> {
    const client = this.languageClient;
    if (client) {
      await client.sendNotification(DidChangeConfigurationNotification.type, {
        settings: { [CONFIG_SECTION]: getServerSettings() },
      });
    }
  }

  private async doStart(): Promise<void> {
    if (this.client) {
      return;
    }
    this._lastError = undefined;
    if (!vscode.workspace.isTrusted) {
      log.info("Workspace is not trusted: the semcode server is not started.");
      this.setState("untrusted");
      return;
    }
    const folders = vscode.workspace.workspaceFolders ?? [];
    const firstFolder = folders[0];
    if (firstFolder === undefined) {
      log.info("No folder is open: the semcode server is not started.");
      this.setState("noWorkspace");
      return;
    }
    this.setState("starting");

    let server: ServerCommand;
    try {
      server = await resolveServerCommand(getExtensionSettings(firstFolder), {
        pythonExtensionInterpreter: () => getPythonExtensionInterpreter(firstFolder.uri),
        findOnPath: (name) => findOnPath(name),
        checkInterpreter: (python) => checkInterpreter(python, log),
        log,
      });
    } catch (error) {
      this.fail(error);
      return;
    }
    this._source = server.source;

    const serverOptions: ServerOptions = {
      command: server.command,
      args: server.args,
      // No `transport`: with TransportKind.stdio the client appends `--stdio` to the arguments.
      options: { cwd: firstFolder.uri.fsPath, env: { ...process.env } },
    };
    const client = new LanguageClient(CLIENT_ID, CLIENT_NAME, serverOptions, this.clientOptions());
    this.client = client;
    this.clientDisposables.push(
      client.onDidChangeState((event) => {
        if (this.client !== client) {
          return;
        }
        if (event.newState === State.Stopped && this._state === "running") {
          // The server died (the client may still restart it, see below).
          this._lastError = "the server stopped unexpectedly";
          this.setState("failed");
        } else if (event.newState === State.Running && this._state === "failed") {
          // The client's error handler restarted a crashed server.
          this._lastError = undefined;
          this.setState("running");
        }
      }),
    );

    log.info(`Starting the semcode server: ${server.command} ${server.args.join(" ")}`);
    try {
      await client.start();
    } catch (error) {
      this.client = undefined;
      this.disposeClientListeners();
      try {
        await client.dispose(2000);
      } catch {
        // already gone
      }
      this.fail(error, server);
      return;
    }
    log.info(`semcode server started (${client.initializeResult?.serverInfo?.name ?? "semcode"} ` +
      `${client.initializeResult?.serverInfo?.version ?? ""}).`);
    this.setState("running");
  }

  private async doStop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.disposeClientListeners();
    if (client) {
      log.info("Stopping the semcode server.");
      try {
        await client.dispose(5000);
      } catch (error) {
        log.warn(`Error while stopping the server: ${errorMessage(error)}`);
      }
    }
    this.setState("stopped");
  }

  private disposeClientListeners(): void {
    for (const d of this.clientDisposables.splice(0)) {
      d.dispose();
    }
  }

  private clientOptions(): LanguageClientOptions {
    const middleware: Middleware = {
      workspace: {
        // Answer `workspace/configuration` for section "semcode" with the server's settings shape.
        configuration: async (params, token, next) => {
          const result = await next(params, token);
          if (!Array.isArray(result)) {
            return result;
          }
          return params.items.map((item, i) => {
            if (item.section !== CONFIG_SECTION) {
              return result[i] as unknown;
            }
            const scope = item.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined;
            return getServerSettings(scope);
          });
        },
      },
      executeCommand: async (command, args, next) => {
        const result: unknown = await next(command, args);
        if (command === ServerCommands.findSimilar && this.client) {
          await this.hooks.showSimilar(args, result as LspLocation[] | null | undefined, this.client);
        }
        return result;
      },
      handleWorkDoneProgress: (token, params, next) => {
        this.progressEmitter.fire({ token, params });
        next(token, params);
      },
    };
    return {
      documentSelector: [{ scheme: "file" }],
      outputChannel: getLogChannel(),
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      stdioOptions: {
        stdout: (input, channel) => {
          input.on("data", (data: Buffer) => {
            channel.warn(`unexpected output on stdout: ${data.toString("utf8").slice(0, 200)}`);
          });
        },
        stderr: createStderrLogger(),
      },
      initializationOptions: () => getServerSettings(),
      initializationFailedHandler: (error) => {
        log.error(`The semcode server failed to initialize: ${errorMessage(error)}`);
        return false;
      },
      middleware,
    };
  }

  private fail(error: unknown, server?: ServerCommand): void {
    const message = errorMessage(error);
    this._lastError = message;
    log.error(`Could not start the semcode server: ${message}`);
    this.setState("failed");
    void showStartError(error, server);
  }

  dispose(): void {
    void this.stop();
    this.stateEmitter.dispose();
    this.progressEmitter.dispose();
  }
}

const FIX_LABELS: Record<FixAction, string> = {
  openSettings: "Open Settings",
  installWithPip: "Install with pip",
  selectInterpreter: "Select Interpreter",
  showOutput: "Show Output",
};

/** A notification that says what went wrong and offers the fixes. */
async function showStartError(error: unknown, server?: ServerCommand): Promise<void> {
  let fixes: FixAction[];
  let python: string[] | undefined;
  let message: string;
  if (error instanceof ServerNotFoundError) {
    fixes = error.fixes;
    python = error.python;
    message = `semcode: ${error.message}`;
  } else {
    fixes = ["showOutput", "openSettings"];
    const cmd = server ? `${server.command} ${server.args.join(" ")}` : "the server";
    message = `semcode: '${cmd}' failed to start (${errorMessage(error)}). Check the output for details; ` +
      "a wrong Python or an outdated semcode installation is the usual cause.";
  }
  const pythonExtensionAvailable = vscode.extensions.getExtension("ms-python.python") !== undefined;
  const labels = fixes
    .filter((f) => f !== "selectInterpreter" || pythonExtensionAvailable)
    .map((f) => FIX_LABELS[f]);
  const choice = await vscode.window.showErrorMessage(message, ...labels, "Restart Server");
  switch (choice) {
    case FIX_LABELS.openSettings:
      await vscode.commands.executeCommand("workbench.action.openSettings", "@ext:semcode.semcode");
      break;
    case FIX_LABELS.installWithPip: {
      const terminal = vscode.window.createTerminal("semcode: install");
      terminal.show();
      terminal.sendText(pipInstallCommand(python));
      void vscode.window.showInformationMessage(
        "semcode: run 'semcode: Restart Server' when the installation has finished.",
        "Restart Server",
      ).then((c) => (c ? vscode.commands.executeCommand("semcode.restartServer") : undefined));
      break;
    }
    case FIX_LABELS.selectInterpreter:
      await vscode.commands.executeCommand("python.setInterpreter");
      break;
    case FIX_LABELS.showOutput:
      getLogChannel().show();
      break;
    case "Restart Server":
      await vscode.commands.executeCommand("semcode.restartServer");
      break;
    default:
      break;
  }
}
