/** The semcode server's custom LSP messages (see docs/protocol.md). */
import { RequestType } from "vscode-languageclient";
import type { Location, Range } from "vscode-languageclient";

export interface SearchFilters {
  path?: string;
  language?: string;
  kind?: string;
  minScore?: number;
}

export interface SearchParams {
  query: string;
  limit?: number;
  filters?: SearchFilters;
}

export interface SearchResult {
  uri: string;
  range: Range;
  score: number;
  symbol?: string | null;
  kind?: string | null;
  language?: string | null;
  preview: string;
  partial?: boolean;
  namePath?: string | null;
  why?: string | null;
}

export type IndexState = "starting" | "indexing" | "ready" | "error";

export interface IndexStatus {
  state: IndexState;
  files: number;
  chunks: number;
  model: string | null;
  dimension: number | null;
  indexPath: string | null;
  workspaceFolders: string[];
  lastError: string | null;
  progress?: { done: number; total: number } | null;
}

export interface ReindexResult {
  files: number;
  chunks: number;
}

export const SemanticSearchRequest = new RequestType<SearchParams, SearchResult[] | null, void>(
  "workspace/semanticSearch",
);

/** Sent with `{}`: pygls cannot parse a request that has no params at all. */
export const StatusRequest = new RequestType<Record<string, never>, IndexStatus, void>("semcode/status");

export type FindSimilarResult = Location[] | null;
