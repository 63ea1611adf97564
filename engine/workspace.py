"""The engine's front door: one workspace folder, its index, and the operations on it.

The CLI, the language server and the MCP server all go through ``Workspace``; none of them touches
the store, the indexer or the model directly. The embedding model is loaded once per process and
shared by every workspace that uses the same model file.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .chunking import CHUNKER_VERSION
from .config import EngineConfig
from .errors import ConfigError, IndexLockedError, SemcodeError
from .indexer import Indexer, ProgressCallback, VectorCache
from .memory import MemoryMonitor
from .models.base import Embedder
from .records import IndexStats, SearchHit
from .search import Searcher, SearchFilters
from .store import ChunkStore, IntegrityReport, sql_string

log = logging.getLogger(__name__)

_EMBEDDERS: dict[tuple[object, ...], Embedder] = {}
_EMBEDDERS_LOCK = threading.Lock()


def shared_embedder(config: EngineConfig) -> Embedder:
    """Load (once per process) the embedding model the config names."""
    key = (config.model_path, config.query_prefix, config.document_prefix, config.effective_threads())
    key += (config.embeddings_url, config.embeddings_model, config.embeddings_max_tokens)
    with _EMBEDDERS_LOCK:
        if key not in _EMBEDDERS:
            from .models import load_embedder

            _EMBEDDERS[key] = load_embedder(config)
        return _EMBEDDERS[key]


@dataclass(frozen=True, slots=True)
class SimilarQuery:
    """What "find similar" searches with: a stored chunk's vector, or code to embed."""

    path: str
    start_line: int
    end_line: int
    code: str


class Workspace:
    def __init__(self, root: Path, config: EngineConfig | None = None, *, embedder: Embedder | None = None) -> None:
        self.root = root.resolve()
        if not self.root.is_dir():
            raise ConfigError(f"workspace folder does not exist: {root}")
        self.config = config or EngineConfig()
        self._embedder = embedder
        self._store: ChunkStore | None = None
        self._open_lock = threading.Lock()
        self.monitor = MemoryMonitor(self.config.memory_limit_mb)
        self.cache = VectorCache()
        self.state = "idle"  # idle | indexing | ready | error
        self.last_error: str | None = None
        self.last_stats: IndexStats | None = None

    # ----------------------------------------------------------------- lazily opened parts
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = shared_embedder(self.config)
        return self._embedder

    @property
    def store(self) -> ChunkStore:
        with self._open_lock:
            if self._store is None:
                info = self.embedder.info
                self._store = ChunkStore(
                    self.config.index_path(self.root),
                    dimension=info.dimension,
                    fingerprint=info.fingerprint,
                    model_name=info.name,
                    chunker_version=CHUNKER_VERSION,
                )
            return self._store

    @property
    def searcher(self) -> Searcher:
        return Searcher(self.store, self.embedder, hybrid=self.config.hybrid)

    def _indexer(self) -> Indexer:
        return Indexer(self.root, self.config, self.store, self.embedder, monitor=self.monitor, cache=self.cache)

    # ----------------------------------------------------------------- writing
    def index(
        self,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        *,
        full: bool = False,
        wait_for_lock: bool = False,
    ) -> IndexStats:
        """Bring the index up to date (``full``: drop it and rebuild). Holds the write lock."""
        self.state = "indexing"
        try:
            with self.store.writer(wait=wait_for_lock):
                if full:
                    self.store.clear()
                stats = self._indexer().index_all(progress, cancel)
                self.store.ensure_indexes(vector_index_min_rows=self.config.vector_index_min_rows)
                if stats.files_indexed or stats.files_deleted:
                    self.store.optimize()
        except IndexLockedError:
            self.state = "ready" if self.store.count_chunks() else "idle"
            raise
        except SemcodeError as exc:
            self.state, self.last_error = "error", str(exc)
            raise
        self.state = "ready"
        self.last_stats = stats
        return stats

    def update_files(self, rel_paths: list[str], *, wait_for_lock: bool = True) -> IndexStats:
        """Re-index files that changed, appeared or disappeared (save, file watcher)."""
        paths = [p for p in (self._relative(p) for p in rel_paths) if p is not None]
        if not paths:
            return IndexStats()
        with self.store.writer(wait=wait_for_lock):
            stats = self._indexer().index_paths(paths)
            self.store.ensure_indexes(vector_index_min_rows=self.config.vector_index_min_rows)
        return stats

    def check(self, *, repair: bool = False) -> IntegrityReport:
        if repair:
            with self.store.writer(wait=True):
                return self.store.check(self.root, repair=True)
        return self.store.check(self.root)

    # ----------------------------------------------------------------- reading
    def search(
        self, query: str, *, limit: int = 10, filters: SearchFilters | None = None, hybrid: bool | None = None
    ) -> list[SearchHit]:
        return self.searcher.search(query, limit=limit, filters=filters, hybrid=hybrid)

    def find_similar(
        self,
        path: str,
        start_line: int,
        end_line: int,
        *,
        limit: int = 10,
        code: str | None = None,
        min_score: float | None = None,
    ) -> list[SearchHit]:
        """Code similar to lines start..end of ``path`` (or to the chunk under ``start_line`` when empty)."""
        rel = self._relative(path)
        if rel is None:
            raise ConfigError(f"{path} is outside the workspace {self.root}")
        target = self._similar_target(rel, start_line, end_line, code)
        return self.searcher.similar(
            target.code, limit=limit, exclude=(target.path, target.start_line, target.end_line), min_score=min_score
        )

    def similar_code(self, code: str, *, limit: int = 10) -> list[SearchHit]:
        """Indexed code most like a snippet that need not be in the workspace."""
        return self.searcher.similar(code, limit=limit)

    def symbols(self, query: str, *, limit: int = 50) -> list[SearchHit]:
        return self.searcher.symbols(query, limit=limit)

    def status(self) -> dict[str, Any]:
        info = self.embedder.info
        stats = self.store.stats()
        return {
            "root": str(self.root),
            "state": self.state,
            "files": stats["files"],
            "chunks": stats["chunks"],
            "model": info.name,
            "modelPath": info.path,
            "dimension": info.dimension,
            "indexPath": stats["path"],
            "vectorIndex": stats["vector_index"],
            "cachedEmbeddings": stats["cached_embeddings"],
            "lastError": self.last_error,
            "lockedByOtherProcess": self.store.is_locked_by_other(),
        }

    # ----------------------------------------------------------------- helpers
    def _relative(self, path: str) -> str | None:
        """Workspace-relative POSIX path for an absolute or relative path; None when outside."""
        candidate = Path(path)
        if not candidate.is_absolute():
            candidate = self.root / candidate
        try:
            return candidate.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return None

    def _similar_target(self, rel: str, start_line: int, end_line: int, code: str | None) -> SimilarQuery:
        if code is None:
            try:
                lines = (self.root / rel).read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError as exc:
                raise ConfigError(f"cannot read {rel}: {exc.strerror or exc}") from exc
            code = "\n".join(lines[start_line : end_line + 1])
        if start_line == end_line or not code.strip():
            # An empty selection means "the symbol under the cursor": use its stored chunk.
            rows = self.store.rows(
                f"path = {sql_string(rel)} AND start_line <= {int(start_line)} AND end_line >= {int(start_line)}",
                limit=50,
            )
            if rows:
                row = min(rows, key=lambda r: r["end_line"] - r["start_line"])
                return SimilarQuery(rel, int(row["start_line"]), int(row["end_line"]), row["content"])
        return SimilarQuery(rel, start_line, end_line, code)
