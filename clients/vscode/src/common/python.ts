/**
 * Optional integration with the Python extension (ms-python.python): the interpreter the user
 * selected there is one of the places the server is looked for. The extension is not required.
 */
import * as vscode from "vscode";
import { errorMessage, log } from "./log";

export const PYTHON_EXTENSION_ID = "ms-python.python";

/** The small part of the Python extension's API that semcode uses. */
interface PythonEnvironmentsApi {
  getActiveEnvironmentPath(resource?: vscode.Uri): { path: string } | undefined;
  resolveEnvironment(
    path: string | { path: string },
  ): Promise<{ executable: { uri?: vscode.Uri | undefined } } | undefined>;
  onDidChangeActiveEnvironmentPath: vscode.Event<unknown>;
}

interface PythonExtensionApi {
  environments?: PythonEnvironmentsApi;
  settings?: {
    getExecutionDetails?(resource?: vscode.Uri): { execCommand: string[] | undefined };
  };
}

async function getApi(): Promise<PythonExtensionApi | undefined> {
  const extension = vscode.extensions.getExtension<PythonExtensionApi>(PYTHON_EXTENSION_ID);
  if (!extension) {
    return undefined;
  }
  try {
    return extension.isActive ? extension.exports : await extension.activate();
  } catch (error) {
    log.warn(`Could not activate the Python extension: ${errorMessage(error)}`);
    return undefined;
  }
}

/** The interpreter selected in the Python extension, as `[executable, ...args]`, if any. */
export async function getPythonExtensionInterpreter(resource?: vscode.Uri): Promise<string[] | undefined> {
  const api = await getApi();
  if (!api) {
    return undefined;
  }
  try {
    const environments = api.environments;
    if (environments) {
      const active = environments.getActiveEnvironmentPath(resource);
      if (active) {
        const resolved = await environments.resolveEnvironment(active);
        const executable = resolved?.executable.uri?.fsPath;
        if (executable) {
          return [executable];
        }
      }
    }
    const command = api.settings?.getExecutionDetails?.(resource).execCommand;
    if (command && command.length > 0) {
      return command;
    }
  } catch (error) {
    log.warn(`Could not read the Python extension's interpreter: ${errorMessage(error)}`);
  }
  return undefined;
}

/** Fires when the user picks another interpreter in the Python extension. */
export async function onDidChangePythonInterpreter(listener: () => void): Promise<vscode.Disposable | undefined> {
  const api = await getApi();
  const event = api?.environments?.onDidChangeActiveEnvironmentPath;
  return event ? event(() => {
    listener();
  }) : undefined;
}
