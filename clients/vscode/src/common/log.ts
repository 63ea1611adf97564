/** One log output channel ("semcode") shared by the extension and the language client. */
import * as vscode from "vscode";
import { CLIENT_NAME } from "./constants";

let channel: vscode.LogOutputChannel | undefined;

export function getLogChannel(): vscode.LogOutputChannel {
  channel ??= vscode.window.createOutputChannel(CLIENT_NAME, { log: true });
  return channel;
}

function format(args: unknown[]): string {
  return args
    .map((a) => (a instanceof Error ? (a.stack ?? a.message) : typeof a === "string" ? a : JSON.stringify(a)))
    .join(" ");
}

export const log = {
  debug: (...args: unknown[]): void => {
    getLogChannel().debug(format(args));
  },
  info: (...args: unknown[]): void => {
    getLogChannel().info(format(args));
  },
  warn: (...args: unknown[]): void => {
    getLogChannel().warn(format(args));
  },
  error: (...args: unknown[]): void => {
    getLogChannel().error(format(args));
  },
};

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

type Level = "trace" | "debug" | "info" | "warn" | "error";

const PYTHON_LEVELS: Record<string, Level> = {
  DEBUG: "debug",
  INFO: "info",
  WARNING: "warn",
  WARN: "warn",
  ERROR: "error",
  CRITICAL: "error",
};

/** `2026-01-02 03:04:05,678 LEVEL logger: message` (Python logging) → level and message. */
const PYTHON_RECORD = /^\d{4}-\d\d-\d\d[ T][\d:.,]+\s+(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\s+(.*)$/;
const BARE_RECORD = /^(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)[\s:]+(.*)$/;

/**
 * Reads the server's stderr line by line and logs each Python log record at its own level (the
 * language client would log every stderr line as an error). Continuation lines, e.g. tracebacks,
 * keep the level of the record they belong to.
 */
export function createStderrLogger(): (input: NodeJS.ReadableStream, channel: vscode.LogOutputChannel) => void {
  return (input, channel) => {
    let level: Level = "info";
    let buffer = "";
    const emit = (line: string): void => {
      if (line.length === 0) {
        return;
      }
      const match = PYTHON_RECORD.exec(line) ?? BARE_RECORD.exec(line);
      let text = line;
      if (match) {
        level = PYTHON_LEVELS[match[1] ?? ""] ?? "info";
        text = match[2] ?? line;
      }
      channel[level](text);
    };
    input.setEncoding("utf8");
    input.on("data", (chunk: string) => {
      buffer += chunk;
      const lines = buffer.split(/\r?\n/);
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        emit(line);
      }
    });
    input.on("end", () => {
      emit(buffer);
      buffer = "";
    });
  };
}
