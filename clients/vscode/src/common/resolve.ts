/**
 * Finding the server, in the order ruff-vscode uses:
 * 1. `semcode.path` (an executable, started as `<path> serve`);
 * 2. `semcode.interpreter` (a Python, started as `<python> -m lsp_server`);
 * 3. the interpreter selected in the Python extension, when that extension is installed and
 *    semcode is installed in that interpreter;
 * 4. `semcode` on PATH.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PIP_PACKAGE, SERVER_EXECUTABLE, SERVER_MODULE, SERVER_SUBCOMMAND } from "./constants";
import type { ExtensionSettings } from "./settings";

/** Where resolution steps are logged (the output channel in the extension, nothing in unit tests). */
export interface ResolveLogger {
  info(message: string): void;
  warn(message: string): void;
}

const silent: ResolveLogger = { info: () => undefined, warn: () => undefined };

export type ServerSource = "path" | "interpreter" | "pythonExtension" | "PATH";

export interface ServerCommand {
  command: string;
  args: string[];
  source: ServerSource;
}

export type FixAction = "openSettings" | "installWithPip" | "selectInterpreter" | "showOutput";

/** Why the server could not be found, phrased for the user, with the actions that fix it. */
export class ServerNotFoundError extends Error {
  constructor(
    message: string,
    readonly fixes: FixAction[],
    readonly python?: string[],
  ) {
    super(message);
    this.name = "ServerNotFoundError";
  }
}

function isExecutableFile(file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) {
      return false;
    }
    if (process.platform !== "win32") {
      fs.accessSync(file, fs.constants.X_OK);
    }
    return true;
  } catch {
    return false;
  }
}

/** Like `which`: the first executable called `name` on PATH (with PATHEXT on Windows). */
export function findOnPath(name: string, envPath = process.env.PATH ?? ""): string | undefined {
  const extensions =
    process.platform === "win32" ? ["", ...(process.env.PATHEXT ?? ".EXE;.CMD;.BAT").split(";")] : [""];
  for (const dir of envPath.split(path.delimiter)) {
    if (!dir) {
      continue;
    }
    for (const ext of extensions) {
      const candidate = path.join(dir, name + ext);
      if (isExecutableFile(candidate)) {
        return candidate;
      }
    }
  }
  return undefined;
}

/** An executable given as a path, or as a bare name looked up on PATH. */
function locateExecutable(value: string): string | undefined {
  if (value.includes("/") || value.includes("\\")) {
    return isExecutableFile(value) ? value : undefined;
  }
  return findOnPath(value);
}

export type ImportCheck = "ok" | "missingModule" | "notPython";

/** Whether `python` runs and can import the server module. */
export function checkInterpreter(python: string[], log: ResolveLogger = silent, timeoutMs = 15_000): Promise<ImportCheck> {
  const [executable, ...args] = python;
  if (executable === undefined) {
    return Promise.resolve("notPython");
  }
  return new Promise((resolve) => {
    execFile(
      executable,
      [...args, "-c", `import sys, importlib.util; sys.exit(0 if importlib.util.find_spec("${SERVER_MODULE}") else 3)`],
      { timeout: timeoutMs },
      (error) => {
        if (!error) {
          resolve("ok");
        } else if (typeof error.code === "number" && error.code === 3) {
          resolve("missingModule");
        } else {
          log.warn(`'${python.join(" ")}' is not a working Python: ${error.message}`);
          resolve("notPython");
        }
      },
    );
  });
}

export function pipInstallCommand(python: string[] | undefined): string {
  const quoted = (python ?? ["python3"]).map((p) => (/\s/.test(p) ? `"${p}"` : p)).join(" ");
  return `${quoted} -m pip install ${PIP_PACKAGE}`;
}

export interface ResolveDeps {
  pythonExtensionInterpreter: () => Promise<string[] | undefined>;
  findOnPath: (name: string) => string | undefined;
  checkInterpreter: (python: string[]) => Promise<ImportCheck>;
  log?: ResolveLogger;
}

export async function resolveServerCommand(
  settings: ExtensionSettings,
  deps: ResolveDeps = {
    pythonExtensionInterpreter: () => Promise.resolve(undefined),
    findOnPath: (name) => findOnPath(name),
    checkInterpreter: (python) => checkInterpreter(python),
  },
): Promise<ServerCommand> {
  const log = deps.log ?? silent;
  // 1. Explicit executable.
  if (settings.path) {
    const executable = locateExecutable(settings.path);
    if (!executable) {
      throw new ServerNotFoundError(
        `The semcode server set in 'semcode.path' (${settings.path}) does not exist or is not executable.`,
        ["openSettings", "showOutput"],
      );
    }
    log.info(`Using the server from 'semcode.path': ${executable}`);
    return { command: executable, args: [SERVER_SUBCOMMAND], source: "path" };
  }

  // 2. Explicit interpreter.
  if (settings.interpreter) {
    const python = [settings.interpreter];
    const check = await deps.checkInterpreter(python);
    if (check === "notPython") {
      throw new ServerNotFoundError(
        `'semcode.interpreter' (${settings.interpreter}) is not a working Python interpreter.`,
        ["openSettings", "selectInterpreter", "showOutput"],
      );
    }
    if (check === "missingModule") {
      throw new ServerNotFoundError(
        `semcode is not installed in the Python set in 'semcode.interpreter' (${settings.interpreter}). ` +
          `Install it with: ${pipInstallCommand(python)}`,
        ["installWithPip", "openSettings", "showOutput"],
        python,
      );
    }
    log.info(`Using 'semcode.interpreter': ${settings.interpreter} -m ${SERVER_MODULE}`);
    return { command: settings.interpreter, args: ["-m", SERVER_MODULE], source: "interpreter" };
  }

  // 3. The Python extension's interpreter, when semcode is installed there.
  const python = await deps.pythonExtensionInterpreter();
  if (python && python.length > 0) {
    const check = await deps.checkInterpreter(python);
    if (check === "ok") {
      const [command, ...args] = python as [string, ...string[]];
      log.info(`Using the Python extension's interpreter: ${python.join(" ")} -m ${SERVER_MODULE}`);
      return { command, args: [...args, "-m", SERVER_MODULE], source: "pythonExtension" };
    }
    log.info(`semcode is not installed in the Python extension's interpreter (${python.join(" ")}).`);
  }

  // 4. PATH.
  const onPath = deps.findOnPath(SERVER_EXECUTABLE);
  if (onPath) {
    log.info(`Using '${SERVER_EXECUTABLE}' from PATH: ${onPath}`);
    return { command: onPath, args: [SERVER_SUBCOMMAND], source: "PATH" };
  }

  throw new ServerNotFoundError(
    "The semcode language server is not installed. Install it with " +
      `'${pipInstallCommand(python)}' (or pipx install ${PIP_PACKAGE}), ` +
      "or point 'semcode.path' / 'semcode.interpreter' at an existing installation.",
    ["installWithPip", "openSettings", "selectInterpreter"],
    python,
  );
}
