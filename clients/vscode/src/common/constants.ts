/** Identifiers shared by the extension's modules. */

export const EXTENSION_ID = "semcode.semcode";
export const CONFIG_SECTION = "semcode";
export const CLIENT_ID = "semcode";
export const CLIENT_NAME = "semcode";

/** The Python distribution, console script and module that provide the server. */
export const PIP_PACKAGE = "semcode";
export const SERVER_EXECUTABLE = "semcode";
export const SERVER_SUBCOMMAND = "serve";
export const SERVER_MODULE = "lsp_server";

/** Commands contributed by this extension (package.json `contributes.commands`). */
export const Commands = {
  search: "semcode.searchWorkspace",
  findSimilar: "semcode.findSimilarCode",
  reindex: "semcode.reindexWorkspace",
  showStatus: "semcode.showStatus",
  restart: "semcode.restartServer",
  showOutput: "semcode.showOutput",
} as const;

/**
 * Commands implemented by the server (`workspace/executeCommand`). vscode-languageclient registers
 * them as VS Code commands while the server runs, so the extension's own commands use other ids.
 */
export const ServerCommands = {
  findSimilar: "semcode.findSimilar",
  reindex: "semcode.reindex",
  status: "semcode.status",
} as const;

/** Title of the server's code action (kind `refactor.semcode.findSimilar`). */
export const FIND_SIMILAR_ACTION_KIND = "refactor.semcode.findSimilar";

/** Debounce delays, in milliseconds. */
export const SEARCH_DEBOUNCE_MS = 250;
export const RESTART_DEBOUNCE_MS = 750;
