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
