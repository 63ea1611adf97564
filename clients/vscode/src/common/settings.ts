/** Reading `semcode.*` settings and turning them into the server's settings object. */
import * as os from "node:os";
import * as path from "node:path";
import * as vscode from "vscode";
import { CONFIG_SECTION } from "./constants";

export type LogLevel = "debug" | "info" | "warning" | "error";

export interface ExtensionSettings {
  /** Server executable (`semcode`), already variable-expanded; "" when unset. */
  path: string;
  /** Python interpreter that has semcode installed; "" when unset. */
  interpreter: string;
  model: string | null;
  include: string[];
  exclude: string[];
  maxFileSize: number;
  hybrid: boolean;
  referencesSimilarCode: boolean;
  logLevel: LogLevel;
  /** OpenAI-compatible embedding server (docs/team.md); null = the in-process model. */
  embeddingsUrl: string | null;
  /** Published team snapshot (s3://, gs://, az://, folder); null = a local index only. */
  sharedIndex: string | null;
}

/** The settings object the server receives (initializationOptions and workspace/configuration). */
export interface ServerSettings {
  model: string | null;
  include: string[];
  exclude: string[];
  maxFileSize: number;
  hybrid: boolean;
  references: { similarCode: boolean };
  logLevel: LogLevel;
  embeddingsUrl: string | null;
  sharedIndex: string | null;
}

/** Settings whose change requires restarting the server (the rest are re-read on the fly). */
export const RESTART_SETTINGS = [
  "path",
  "interpreter",
  "model",
  "include",
  "exclude",
  "maxFileSize",
  "logLevel",
  "embeddingsUrl",
  "sharedIndex",
] as const;

/** Settings the server re-reads through `workspace/configuration` without a restart. */
export const LIVE_SETTINGS = ["hybrid", "references.similarCode"] as const;

const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warning", "error"];

function firstFolderPath(scope?: vscode.ConfigurationScope): string | undefined {
  if (scope instanceof vscode.Uri) {
    const folder = vscode.workspace.getWorkspaceFolder(scope);
    if (folder) {
      return folder.uri.fsPath;
    }
  } else if (scope && "uri" in scope && scope.uri instanceof vscode.Uri) {
    return vscode.workspace.getWorkspaceFolder(scope.uri)?.uri.fsPath ?? scope.uri.fsPath;
  }
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
}

/**
 * Expands `~`, `${userHome}`, `${workspaceFolder}`, `${workspaceFolderBasename}` and `${env:NAME}`
 * the way VS Code users expect in path settings.
 */
export function resolveVariables(value: string, workspaceFolder?: string): string {
  let result = value.trim();
  if (result === "~" || result.startsWith("~/") || result.startsWith("~\\")) {
    result = os.homedir() + result.slice(1);
  }
  result = result.replace(/\$\{userHome\}/g, os.homedir());
  if (workspaceFolder !== undefined) {
    result = result
      .replace(/\$\{workspaceFolder\}/g, workspaceFolder)
      .replace(/\$\{workspaceFolderBasename\}/g, path.basename(workspaceFolder));
  }
  result = result.replace(/\$\{env:([^}]+)\}/g, (_match, name: string) => process.env[name] ?? "");
  return result;
}

function optionalString(value: unknown): string | null {
  return typeof value === "string" && value.trim() !== "" ? value.trim() : null;
}

function stringArray(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

export function getExtensionSettings(scope?: vscode.ConfigurationScope): ExtensionSettings {
  const config = vscode.workspace.getConfiguration(CONFIG_SECTION, scope);
  const folder = firstFolderPath(scope);
  const model = config.get<string | null>("model", null);
  const maxFileSize = config.get<number>("maxFileSize", 1_000_000);
  const logLevel = config.get<string>("logLevel", "info");
  return {
    path: resolveVariables(config.get<string>("path", ""), folder),
    interpreter: resolveVariables(config.get<string>("interpreter", ""), folder),
    model: typeof model === "string" && model.trim() !== "" ? resolveVariables(model, folder) : null,
    include: stringArray(config.get("include", [])),
    exclude: stringArray(config.get("exclude", [])),
    maxFileSize: Number.isInteger(maxFileSize) && maxFileSize > 0 ? maxFileSize : 1_000_000,
    hybrid: config.get<boolean>("hybrid", true),
    referencesSimilarCode: config.get<boolean>("references.similarCode", false),
    logLevel: (LOG_LEVELS as readonly string[]).includes(logLevel) ? (logLevel as LogLevel) : "info",
    embeddingsUrl: optionalString(config.get("embeddingsUrl", null)),
    sharedIndex: optionalString(config.get("sharedIndex", null)),
  };
}

export function toServerSettings(settings: ExtensionSettings): ServerSettings {
  return {
    model: settings.model,
    include: settings.include,
    exclude: settings.exclude,
    maxFileSize: settings.maxFileSize,
    hybrid: settings.hybrid,
    references: { similarCode: settings.referencesSimilarCode },
    logLevel: settings.logLevel,
    embeddingsUrl: settings.embeddingsUrl,
    sharedIndex: settings.sharedIndex,
  };
}

export function getServerSettings(scope?: vscode.ConfigurationScope): ServerSettings {
  return toServerSettings(getExtensionSettings(scope));
}

export function affectsAny(event: vscode.ConfigurationChangeEvent, keys: readonly string[]): boolean {
  return keys.some((key) => event.affectsConfiguration(`${CONFIG_SECTION}.${key}`));
}
