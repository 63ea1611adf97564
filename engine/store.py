"""LanceDB storage: chunk rows with vectors, the file manifest and the embedding cache.

Three tables live in one LanceDB directory, one directory per (workspace folder, model):
- ``chunks``: one row per chunk (metadata, lexical tokens, vector); searched. Each row carries the
  content hash of the file version it came from (``file_hash``) and the kind of its vector (``tier``).
- ``files``: the manifest (path, size, mtime, content hash, chunk count) that makes indexing incremental.
- ``embeddings``: text hash -> vector, so a chunk whose text was embedded once is never embedded again,
  even after its rows are gone (a branch switched away and back); bounded, least recently used
  evicted first (engine/embedding_cache.py).
``meta.json`` records the schema version, the model fingerprint and the dimension.

Crash safety. A batch is written in three commits: embedding cache, chunk rows, manifest (a save
writes the cache last: its rows hold the few new vectors anyway, and are searchable sooner). The chunk
commit replaces each file's rows at once, so a reader sees a file's old rows or its new ones, never
both or neither: an update-and-insert keyed on ``id`` through its scalar index (row ids are path +
ordinal). A file that shrank has its surplus rows overwritten in that commit by blank rows no search
finds, deleted by id in the next (``_replace_rows``; the "not matched by source" merge that did it in one
commit joined the whole table, 1.5 s and +350 MB at 179K rows). Deleted files' rows go in a delete of
their own. A crash between
the chunk and manifest commits leaves rows whose ``file_hash`` (or count, or presence) disagrees with
the manifest; every index run compares the two (``inconsistent_paths``) and indexes such files again,
and ``check`` reports and ``--repair`` drops them. Every commit boundary has a fault point
(engine/faults.py) so the torture tests can stop a writer at each of them.

Ownership. The index's data is deleted or rebuilt only by a process holding the write lock. A process
that opens an index of another schema, chunker or model reads nothing from it (empty results) and
leaves it alone; the next writer moves it aside and builds a fresh one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .cache_uses import USES_FILE
from .embedding_cache import DEFAULT_LIMIT, EmbeddingCache, cache_schema, fold_uses
from .errors import IndexLockedError, MaintenancePreempted, StoreError, missing_dependency
from .faults import fault_point
from .lance_reads import full_text_row_ids, log_fallback, nearest_row_ids
from .lance_rows import parts as _parts
from .lance_rows import sql_in as sql_in  # part of this module's API (explicit re-exports)
from .lance_rows import sql_string as sql_string
from .lance_rows import vector_array as _vector_array
from .lance_rows import vectors_of as _vectors
from .maintenance_steps import Step, run_steps
from .memory import trim_malloc
from .names import NAME_COLUMNS, NameIndex, NameTable
from .records import Chunk
from .row_payload import PAYLOAD_COLUMNS, ROW_COLUMNS, payload_fits, texts_fit

if TYPE_CHECKING:
    import pyarrow as pa
    from lancedb import Session
    from lancedb.db import DBConnection
    from lancedb.query import LanceVectorQueryBuilder
    from lancedb.table import Table

log = logging.getLogger(__name__)

# 2: file_hash and tier columns, chunk ids unique by construction (ordinal within the file).
SCHEMA_VERSION = 2
CHUNKS, FILES, EMBEDDINGS = "chunks", "files", "embeddings"
COMPACT_EVERY_WRITES = 64
TRIM_MIN_ROWS = 1024  # writes of fewer rows skip malloc_trim (see _after_write)
OWN_WRITE_PATHS = 8  # writes of this many paths at most keep what they wrote for the next save's reads
FTS_COLUMN = "lex"
# English stemming on both sides ("formatted dates" meets format/date): +0.06 to +0.10 MRR for BM25
# on the benchmark corpora. An index built without it gets its full-text index rebuilt, nothing else.
FTS_STEM = True
# What a chunk's vector is: a placeholder, a cheap static vector, or the model's embedding.
TIER_PLACEHOLDER, TIER_STATIC, TIER_MODEL = 0, 1, 2
LANCE_DIR = "lance"
# LanceDB's caches default to 6 GB (opened indexes) and 1 GB (file metadata) per process, and every
# compaction opens a new version of the full-text and vector indexes: an indexing process grew to 1.7 GB
# on a 178K-chunk workspace. Bounded, the hot part (the current indexes, the latest manifests) still fits.
INDEX_CACHE_BYTES = 192 << 20
METADATA_CACHE_BYTES = 64 << 20
STALE_PREFIX = "lance.stale-"
CARRY_DIR = "cache.carry"  # the embedding cache on its way from a stale index to its rebuild
# From this many chunk rows index builds and compaction run in a child process when the store has a
# ``maintainer`` (engine/maintenance.py): their native memory goes back to the system with the child.
MAINTENANCE_CHILD_MIN_ROWS = 50_000
# How old a table version must be before a compaction drops it (a reader may still be on a recent one).
CLEANUP_AGE = timedelta(minutes=5)
SCAN_BATCH_ROWS = 8_192  # rows a whole-table scan holds at a time (path_rows of every path, pending_paths)
# The path of the blank rows a shrinking file's surplus rows become for one commit (see ``_replace_rows``).
# Never a workspace path (those are relative), and no path name of it matches a look-up (no dot in it).
# A crash before their delete leaves them: every index run drops rows of paths the manifest does not know.
VANISHED_PATH = "/semcode/vanished-rows"


@dataclass(frozen=True, slots=True)
class FileRecord:
    path: str
    size: int
    mtime_ns: int
    content_hash: str
    chunk_count: int


@dataclass(frozen=True, slots=True)
class PathRows:
    """What the chunk table holds for one path: how many rows, carrying which file hashes."""

    count: int
    file_hashes: frozenset[str]


@dataclass(slots=True)
class IntegrityReport:
    rows_checked: int = 0
    bad_vectors: list[str] = field(default_factory=list)  # chunk ids with NaN/inf or zero vectors
    orphan_paths: list[str] = field(default_factory=list)  # rows whose file is gone or not in the manifest
    count_mismatch: list[str] = field(default_factory=list)  # manifest chunk_count != rows
    stale_rows: list[str] = field(default_factory=list)  # rows carrying another file version than the manifest
    duplicate_ids: list[str] = field(default_factory=list)  # chunk ids held by more than one row
    bad_cached_vectors: list[str] = field(default_factory=list)  # text hashes whose cached vector is NaN/zero
    dimension_ok: bool = True
    version_ok: bool = True  # False: built by another schema, chunker or model; the next writer rebuilds it
    version_note: str | None = None
    repaired: bool = False

    @property
    def ok(self) -> bool:
        return (
            self.dimension_ok
            and self.version_ok
            and not (
                self.bad_vectors
                or self.orphan_paths
                or self.count_mismatch
                or self.stale_rows
                or self.duplicate_ids
                or self.bad_cached_vectors
            )
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


def _lancedb() -> Any:
    from .lazy_imports import import_lancedb
    from .memory import prepare_native_memory

    prepare_native_memory()  # before lancedb starts its threads (arenas) and allocates (Arrow's pool)
    try:
        # Without its REST client's __init__ and with its pydantic models built lazily: ~60% of the
        # import, never used for local tables (engine/lazy_imports.py).
        return import_lancedb()
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise missing_dependency("lancedb", "lancedb") from exc


def chunk_id(chunk: Chunk, ordinal: int = 0) -> str:
    """A row id unique by construction: the file's path and the chunk's ordinal within it.

    Two chunks of one file may share lines and text (one long line split into identical windows);
    duplicate ids would make every later ``merge_insert`` fail as ambiguous. Nothing of the chunk's
    text is in it: a new version of a file then reuses the ids of the old one, so a save that does not
    shrink the file replaces its rows with an update-and-insert through the ``id`` index, in one commit
    (engine/row_ids.py). Rows written by an older semcode (ids with lines and text hash) are taken over
    the same way. The dense tier never trusts an id alone: it also matches the text hash.
    """
    from .records import text_hash

    return text_hash(f"{chunk.path}\0{ordinal}")


def _rows_by_path(table: pa.Table) -> tuple[dict[str, set[str]], dict[str, PathRows]]:
    """Ids and ``PathRows`` per path of chunk rows (``id``, ``path``, ``file_hash`` columns)."""
    ids: dict[str, set[str]] = {}
    hashes: dict[str, set[str]] = {}
    for row_id, path, file_hash in zip(
        table["id"].to_pylist(), table["path"].to_pylist(), table["file_hash"].to_pylist(), strict=True
    ):
        ids.setdefault(path, set()).add(row_id)
        hashes.setdefault(path, set()).add(file_hash)
    return ids, {p: PathRows(len(ids[p]), frozenset(hashes[p])) for p in ids}


def inconsistent(manifest: dict[str, FileRecord], rows: dict[str, PathRows]) -> set[str]:
    """Paths whose chunk rows and manifest entry disagree (presence, count or file version)."""
    bad = {path for path in rows if path not in manifest}
    for path, record in manifest.items():
        held = rows.get(path)
        if held is None:
            if record.chunk_count:
                bad.add(path)
        elif held.count != record.chunk_count or held.file_hashes != {record.content_hash}:
            bad.add(path)
    return bad


def ivf_partitions(rows: int) -> int:
    """IVF partitions for a table of ``rows`` vectors (about sqrt(rows), LanceDB's own rule)."""
    return max(16, int(rows**0.5))


IVF_PROBE_FRACTION = 0.2
# Each optimize that folds new rows in adds a delta segment to the vector index (LanceDB keeps the
# centroids), and a query searches every segment: +1.3 ms a segment at 178K rows (p50 12.7 ms with one,
# 23.6 ms with nine; BENCHMARKS.md, ivfslow). Past this many the index is built again (10 s at 178K).
IVF_MAX_SEGMENTS = 8


def ivf_nprobes(rows: int) -> int:
    """Partitions a query probes: a fifth of them, at least 20.

    A fixed 20 probed ever less of a growing table: at 178K rows (421 partitions) recall@10 against
    exact search was 0.82; a fifth (80 + probes) gave 0.96 at p95 12 ms (bench/bench_scale.py recall).
    """
    return max(20, int(ivf_partitions(rows) * IVF_PROBE_FRACTION + 0.999))


def connect(lance_dir: Path, session: Session | None = None) -> DBConnection:
    """A connection to an index's LanceDB directory: caches bounded, every read sees the latest commit."""
    lancedb = _lancedb()
    if session is None:
        session = lancedb.Session(
            index_cache_size_bytes=INDEX_CACHE_BYTES, metadata_cache_size_bytes=METADATA_CACHE_BYTES
        )
    db: DBConnection = lancedb.connect(str(lance_dir), read_consistency_interval=timedelta(0), session=session)
    return db


def ivf_partition_rows(rows: int) -> int:
    """Rows per IVF partition for a table of ``rows`` vectors: ``ivf_partitions(rows)`` partitions."""
    return max(1, -(-rows // ivf_partitions(rows)))


# The vector index: IVF partitions of 8-bit scalar-quantised vectors (IVF_SQ), then the best
# ``VECTOR_REFINE_FACTOR`` x limit candidates re-ranked by their exact vectors read from the table.
# IVF_FLAT kept every float32 vector in the index (178K x 384 = 274 MB): more than the bounded index
# cache, so a server's cache filled to its bound within 30 queries and each query still re-read ~50 MB
# of partitions. IVF_SQ is a quarter of that (BENCHMARKS.md "memory (session 5)").
VECTOR_INDEX_TYPE = "IvfSq"  # LanceDB's name for what ivf_config builds; another one is built again
VECTOR_REFINE_FACTOR = 2
# k-means trains on this many vectors a partition (LanceDB's default: 256). The sample is held in memory
# while it trains: at 179K rows 256 a partition was 108K vectors (166 MB), the build's peak; 64 (27K
# vectors) took the build child from 488 to ~320 MB and k-means from ~20 to ~9 s; recall@10 against
# exact search 0.963 vs 0.966 (nprobes 85, refine 2; BENCHMARKS.md, "rss10 (session 10)").
IVF_SAMPLE_RATE = 64


def ivf_config(partition_rows: int) -> Any:
    """The vector index (IVF_SQ, cosine): one definition for this process and the maintenance child.

    Sized by rows per partition, not by a partition count: LanceDB records the target size in the index
    and ``optimize`` keeps partitions near it. Built with ``num_partitions`` alone, the first optimize
    re-partitioned to LanceDB's default size: 421 partitions became 11 at 178K rows, every query then
    read all 274 MB of vectors (p50 65 ms instead of 12 ms; BENCHMARKS.md, ivfslow).
    """
    from lancedb.index import IvfSq

    return IvfSq(distance_type="cosine", target_partition_size=partition_rows, sample_rate=IVF_SAMPLE_RATE)


def ivf_current(index: Any) -> bool:
    """Whether a vector index is what ``ivf_config`` builds now: its type and a target partition size."""
    return getattr(index, "index_type", None) == VECTOR_INDEX_TYPE and ivf_sized(getattr(index, "index_details", None))


def ivf_sized(index_details: dict[str, Any] | None) -> bool:
    """Whether a vector index was built by ``ivf_config`` (a target partition size), not by an older one."""
    return bool((index_details or {}).get("target_partition_size"))


def optimize_tables(tables: Sequence[Table], compact: Callable[[Table], bool] | None = None) -> None:
    """Compact fragments, fold new rows into the indexes, drop old versions; a fault point per table.

    Also deletes files no version refers to, whatever their age (``delete_unverified``): what a crashed
    write or a killed maintenance child left (a stopped compaction of a 179K-row table: ~200 MB), which
    LanceDB otherwise keeps for 7 days in case a write is still in flight. None is: every caller holds
    the index's write lock (a maintenance child runs under its parent's), and readers only ever open
    files a version refers to.

    ``compact(table)``: another way to do one table's optimize (True: done), e.g. the maintenance child's
    (engine/lance_compaction.py); LanceDB's ``optimize`` when it returns False.
    """
    fault_point("optimize.before")
    for table in tables:
        try:
            if compact is None or not compact(table):
                table.optimize(cleanup_older_than=CLEANUP_AGE, delete_unverified=True)
            if table.name == EMBEDDINGS:  # its use log to one record per vector (engine/cache_uses.py)
                fold_uses(table)
        except Exception as exc:  # noqa: BLE001 - maintenance must never fail a write
            log.warning("compaction of %s failed: %s", table.name, exc)
        # What one table's compaction freed goes back before the next one allocates: glibc kept ~240 MB
        # of the chunk table's, on which the embedding cache's compaction stacked its own (child peak
        # 631 MB at 179K rows; BENCHMARKS.md, "memory6 (session 6)").
        trim_malloc()
        fault_point("optimize.mid")
    fault_point("optimize.after")


def fts_config() -> Any:
    """The full-text analyzer of the ``lex`` column; queries are tokenized by engine.lexical to match it.

    One definition for every index built over chunk rows (the local store, published snapshots).
    """
    from lancedb.index import FTS

    return FTS(
        base_tokenizer="whitespace",
        lower_case=True,
        stem=FTS_STEM,
        remove_stop_words=False,
        ascii_folding=False,
        with_position=False,
        max_token_length=64,
    )


class ChunkStore:
    """The on-disk index of one workspace folder built with one model."""

    # Set by _open_tables; absent while the index on disk is of another version (readers check _ready()).
    _db: DBConnection
    _chunks: Table
    _files: Table
    _embeddings: Table
    _cache: EmbeddingCache  # over _embeddings

    def __init__(
        self,
        path: Path,
        *,
        dimension: int,
        fingerprint: str,
        model_name: str = "",
        chunker_version: int = 0,
        cache_limit: int = DEFAULT_LIMIT,
    ) -> None:
        self.path = path
        self.chunker_version = chunker_version
        self.dimension = dimension
        self.fingerprint = fingerprint
        self.model_name = model_name
        self.cache_limit = cache_limit
        self.rebuilt_reason: str | None = None  # set when this process rebuilt the index
        self.stale_reason: str | None = None  # set while the index on disk is of another version
        self._write_lock = threading.RLock()
        self._writes = 0
        self._pending: tuple[int, int] | None = None  # (table version, placeholder rows) for queries
        self._rows: tuple[int, int] | None = None  # (table version, rows): the IVF probe count follows it
        self._held_ids: tuple[int, frozenset[str], dict[str, set[str]]] | None = None  # see _row_ids
        # What our last small write left (table version, paths, ids, rows; manifest entries): the next
        # save of the same files reads nothing again while the table is still at that version.
        self._own_rows: tuple[int, frozenset[str], dict[str, set[str]], dict[str, PathRows]] | None = None
        self._own_manifest: tuple[int, dict[str, FileRecord | None]] | None = None
        self._ahead_rows: tuple[int, frozenset[str], dict[str, set[str]], dict[str, PathRows]] | None = None
        self._indexes_complete = False  # ensure_indexes found every index built (see there)
        self._session: Session | None = None  # LanceDB's caches, bounded (see INDEX_CACHE_BYTES)
        # Runs (lance dir, operation, params) in a child process; True when done (engine/maintenance.py).
        self.maintainer: Callable[..., bool] | None = None  # (lance_dir, operation, params, preempt=None)
        self.defer_compaction = False  # True: the periodic compaction is left to ``compact_if_due``
        self.compaction_due = False
        self._names = NameIndex(self._load_names)  # the look-ups' in-memory name table (engine/names.py)
        try:
            path.mkdir(parents=True, exist_ok=True)
            from filelock import FileLock

            # thread_local=False: the RLock above already keeps other threads out; re-entrant inside one thread.
            self._flock = FileLock(str(path / "write.lock"), thread_local=False)
            reason = self._meta_mismatch()
            if reason is None:
                self._open_tables()
            elif reason == "":  # a new index: meta first, so no one mistakes half-created tables for stale ones
                self._write_meta()
                self._open_tables()
            else:
                self.stale_reason = reason
                log.warning("the index at %s is not usable (%s): the next indexing rebuilds it", path, reason)
        except OSError as exc:
            raise StoreError(f"cannot open the index at {path}: {exc.strerror or exc}") from exc

    # ----------------------------------------------------------------- schema and meta
    def _chunk_schema(self) -> pa.Schema:
        import pyarrow as pa

        return pa.schema(
            [
                pa.field("id", pa.string()),
                pa.field("path", pa.string()),
                pa.field("language", pa.string()),
                pa.field("symbol", pa.string()),
                pa.field("kind", pa.string()),
                pa.field("parent", pa.string()),
                pa.field("start_line", pa.int32()),
                pa.field("end_line", pa.int32()),
                pa.field("content", pa.string()),
                pa.field("text_hash", pa.string()),
                pa.field("file_hash", pa.string()),
                pa.field("tier", pa.int8()),
                pa.field(FTS_COLUMN, pa.string()),
                pa.field("vector", pa.list_(pa.float32(), self.dimension)),
            ]
        )

    @staticmethod
    def _file_schema() -> pa.Schema:
        import pyarrow as pa

        return pa.schema(
            [
                pa.field("path", pa.string()),
                pa.field("size", pa.int64()),
                pa.field("mtime_ns", pa.int64()),
                pa.field("content_hash", pa.string()),
                pa.field("chunk_count", pa.int32()),
            ]
        )

    def _embedding_schema(self) -> pa.Schema:
        return cache_schema(self.dimension)

    @classmethod
    def as_recorded(cls, path: Path) -> ChunkStore:
        """The index at ``path``, opened with the identity its own meta.json records (for a process that has
        no model: the maintenance chain's seal). Raises when there is none: never creates or rebuilds one."""
        meta = json.loads((path / "meta.json").read_text())
        return cls(
            path,
            dimension=int(meta["dimension"]),
            fingerprint=str(meta["fingerprint"]),
            model_name=str(meta.get("model", "")),
            chunker_version=int(meta["chunker"]),
        )

    def _wanted_meta(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "fingerprint": self.fingerprint,
            "dimension": self.dimension,
            "chunker": self.chunker_version,
            "model": self.model_name,
        }

    def _meta_mismatch(self) -> str | None:
        """None: meta.json matches; "": no index here yet; else why the index on disk is unusable."""
        meta_path = self.path / "meta.json"
        if not meta_path.exists():
            if (self.path / LANCE_DIR).exists():
                return "the index has no meta.json (an interrupted creation or an older semcode)"
            return ""
        try:
            meta = json.loads(meta_path.read_text())
            if not isinstance(meta, dict):
                raise ValueError("not an object")
        except (OSError, ValueError):
            return "its meta.json is unreadable"
        wanted = self._wanted_meta()
        if all(meta.get(key) == value for key, value in wanted.items() if key != "model"):
            return None
        if meta.get("schema") != SCHEMA_VERSION:
            return "the index format changed"
        if meta.get("fingerprint") != self.fingerprint:
            return f"the embedding model changed (was {meta.get('model') or 'another model'})"
        if meta.get("dimension") != self.dimension:
            return "the embedding dimension changed"
        return "this semcode version splits code into chunks differently"

    def _write_meta(self) -> None:
        meta_path = self.path / "meta.json"
        # A private temp name: two processes opening a new index at once must not share one.
        tmp = meta_path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(self._wanted_meta(), indent=2))
        os.replace(tmp, meta_path)

    def _open_tables(self) -> None:
        import pyarrow as pa  # noqa: F401 - lancedb dependency, imported for schemas

        lancedb = _lancedb()
        if self._session is None:
            self._session = lancedb.Session(
                index_cache_size_bytes=INDEX_CACHE_BYTES, metadata_cache_size_bytes=METADATA_CACHE_BYTES
            )
        self._db = connect(self.path / LANCE_DIR, self._session)
        self._pending = self._rows = None
        self._own_rows = self._own_manifest = self._held_ids = self._ahead_rows = None
        self._indexes_complete = False
        self._names.clear()
        self._chunks = self._open_or_create(CHUNKS, self._chunk_schema())
        self._files = self._open_or_create(FILES, self._file_schema())
        self._embeddings = self._open_or_create(EMBEDDINGS, self._embedding_schema())
        self._cache = EmbeddingCache(self._embeddings, self.dimension, self.cache_limit)

    def _open_or_create(self, name: str, schema: pa.Schema) -> Table:
        try:
            return self._db.open_table(name)
        except (ValueError, FileNotFoundError):
            try:
                return self._db.create_table(name, schema=schema)
            except ValueError:  # created by another process in between
                return self._db.open_table(name)

    def _ready(self) -> bool:
        """Whether this index can be read; a stale one becomes readable once a writer rebuilt it."""
        if self.stale_reason is None:
            return True
        if self._meta_mismatch() is None:  # another process rebuilt it meanwhile
            self._open_tables()
            self.stale_reason = None
            return True
        return False

    def _rebuild(self) -> None:
        """Replace a stale index by an empty one. Only ever called with the write lock held."""
        reason = self._meta_mismatch()
        if reason is None:  # rebuilt by the writer we waited for
            self._open_tables()
            self.stale_reason = None
            return
        reason = reason or self.stale_reason or "a new index"
        log.warning("rebuilding the index at %s: %s", self.path, reason)
        lance = self.path / LANCE_DIR
        carried = self._carry_embedding_cache(lance) if self._cache_survives() else None
        if lance.exists():
            # Moved aside in one rename: no reader ever opens a half-deleted table.
            os.replace(lance, self.path / f"{STALE_PREFIX}{os.getpid()}-{time.time_ns()}")
        fault_point("rebuild.mid")
        for old in self.path.glob(f"{STALE_PREFIX}*"):
            shutil.rmtree(old, ignore_errors=True)
        if carried is not None:
            lance.mkdir(parents=True, exist_ok=True)
            if (carried.parent / USES_FILE).is_file():
                os.replace(carried.parent / USES_FILE, lance / USES_FILE)
            os.replace(carried, lance / f"{EMBEDDINGS}.lance")
            carried.parent.rmdir()
        self._write_meta()
        self._open_tables()
        self.stale_reason = None
        self.rebuilt_reason = reason

    def _cache_survives(self) -> bool:
        """Whether the vectors on disk are still valid: only the chunker changed, not the model or format.

        The cache is keyed by the hash of the text the model embedded, so a new chunker simply finds the
        texts it still produces and embeds the rest; dropping it would re-embed a whole workspace
        (hours at 100K chunks) on every semcode upgrade that splits code differently.
        """
        try:
            meta = json.loads((self.path / "meta.json").read_text())
        except (OSError, ValueError):
            return False
        wanted = self._wanted_meta()
        return isinstance(meta, dict) and all(
            meta.get(key) == wanted[key] for key in ("schema", "fingerprint", "dimension")
        )

    def _carry_embedding_cache(self, lance: Path) -> Path | None:
        """Copy the stale index's embedding cache aside (a file copy: LanceDB tables are directories).

        Copied rather than moved, so a crash at any instant leaves the stale index whole (the next
        rebuild starts over); a leftover copy is deleted with the next one. None: nothing to carry.
        """
        table = lance / f"{EMBEDDINGS}.lance"
        staging = self.path / CARRY_DIR
        if not table.is_dir():  # a rebuild that crashed after moving the stale index aside left its copy
            return staging / table.name if (staging / table.name).is_dir() else None
        shutil.rmtree(staging, ignore_errors=True)
        try:
            shutil.copytree(table, staging / table.name)
            if (lance / USES_FILE).is_file():  # its use log; a crash before it is copied only ages the vectors
                shutil.copy2(lance / USES_FILE, staging / USES_FILE)
        except OSError as exc:
            log.warning("the embedding cache could not be kept (%s): every chunk is embedded again", exc)
            shutil.rmtree(staging, ignore_errors=True)
            return None
        fault_point("rebuild.carried")
        return staging / table.name

    # ----------------------------------------------------------------- locking
    @contextmanager
    def writer(self, *, wait: bool = False) -> Iterator[None]:
        """Hold the index's write lock: one writing process per index (LSP server, CLI, MCP).

        Re-entrant within a thread. The first writer to find a stale index rebuilds it here.
        """
        from filelock import Timeout

        with self._write_lock:
            try:
                self._flock.acquire(timeout=-1 if wait else 0)
            except Timeout as exc:
                raise IndexLockedError(
                    f"another semcode process is writing the index at {self.path}; "
                    "its results are readable, and this process will not write until it is done"
                ) from exc
            except OSError as exc:
                raise StoreError(f"cannot lock the index at {self.path}: {exc.strerror or exc}") from exc
            try:
                if self.stale_reason is not None:
                    self._rebuild()
                yield
            finally:
                self._flock.release()

    def lock_descriptor(self) -> int | None:
        """The open file descriptor of the write lock this process holds (for ``maintenance.hand_off``),
        or None: not held, or filelock keeps it where this cannot see it (its private ``_context``)."""
        import os

        fd = getattr(getattr(self._flock, "_context", None), "lock_file_fd", None)
        if not isinstance(fd, int) or not self._flock.is_locked:
            return None
        try:
            held = os.path.samestat(os.fstat(fd), os.stat(self.path / "write.lock"))
        except OSError:
            return None
        return fd if held else None

    @property
    def lance_dir(self) -> Path:
        return self.path / LANCE_DIR

    def is_locked_by_other(self) -> bool:
        """True when another process holds the write lock (never waits)."""
        from filelock import Timeout

        if not self._write_lock.acquire(blocking=False):
            return False  # this process is the writer
        try:
            if self._flock.is_locked:
                return False
            try:
                self._flock.acquire(timeout=0)
            except Timeout:
                return True
            except OSError:
                return False
            self._flock.release()
            return False
        finally:
            self._write_lock.release()

    # ----------------------------------------------------------------- manifest
    def manifest(self, paths: Iterable[str] | None = None) -> dict[str, FileRecord]:
        """The manifest, or just the entries of ``paths`` (a save reads one entry, not 13K)."""
        if not self._ready():
            return {}
        if paths is None:
            table = self._files.to_arrow()
            # Column by column: ``to_pylist`` builds a dict per row first (13.6K entries).
            columns = [table[name].to_pylist() for name in ("path", "size", "mtime_ns", "content_hash", "chunk_count")]
            return {fields[0]: FileRecord(*fields) for fields in zip(*columns, strict=True)}
        wanted = set(paths)
        own = self._own_manifest
        if own is not None and wanted <= own[1].keys() and own[0] == self._files.version:
            return {p: r for p in wanted if (r := own[1][p]) is not None}  # what our last write left there
        found: dict[str, FileRecord] = {}
        for part in _parts(sorted(wanted)):
            rows = self._files.search().where(sql_in("path", part)).limit(None).to_arrow().to_pylist()
            found.update((row["path"], FileRecord(**row)) for row in rows)
        return found

    def manifest_under(self, folder: str) -> list[str]:
        """Paths of the manifest below ``folder`` (a deleted or renamed directory)."""
        if not self._ready():
            return []
        prefix = folder.rstrip("/") + "/"
        # Unescaped: ``_`` and ``%`` only widen the match (filtered below); a backslash (an escape in
        # LIKE) becomes the one-character wildcard.
        pattern = prefix.replace("\\", "_") + "%"
        table = self._files.search().where(f"path LIKE {sql_string(pattern)}").select(["path"])
        return [p for p in table.limit(None).to_arrow()["path"].to_pylist() if p.startswith(prefix)]

    def _put_manifest(
        self, records: Sequence[FileRecord], removed: Sequence[str] = (), *, append: bool = False
    ) -> None:
        paths = [r.path for r in records] + list(removed)
        if not paths:
            return
        rows = [asdict(r) for r in records]
        import pyarrow as pa

        data = pa.Table.from_pylist(rows, schema=self._file_schema())
        self._own_manifest = None
        if append:  # paths the manifest does not hold (the caller knows): no merge, no scan
            self._files.add(data)
            return
        # Upsert through the ``path`` scalar index, then a delete: a "not matched by source" clause
        # would scan the whole manifest. Readers never search the manifest, and a crash in between
        # leaves entries of removed files without rows, which the next run removes again.
        if rows:
            self._files.merge_insert("path").when_matched_update_all().when_not_matched_insert_all().execute(data)
        if removed:
            fault_point("manifest.mid")
            for part in _parts(list(removed)):
                self._files.delete(sql_in("path", part))
        if len(paths) <= OWN_WRITE_PATHS:  # the next save of these files reads its entries from here
            entries: dict[str, FileRecord | None] = {p: None for p in removed}
            entries.update((r.path, r) for r in records)
            self._own_manifest = (self._files.version, entries)

    def touch_files(self, records: Sequence[FileRecord]) -> None:
        """Record a new mtime for files whose content did not change."""
        if not records:
            return
        with self.writer(wait=True):
            fault_point("touch.before")
            self._put_manifest(records)
            fault_point("touch.after")
            self._after_write()

    def path_rows(
        self, paths: Iterable[str] | None = None, *, vectors: dict[str, np.ndarray] | None = None
    ) -> dict[str, PathRows]:
        """Per path: the number of chunk rows and the file hashes they carry (all paths when None).

        ``vectors`` (with ``paths``): filled with the model vectors those rows hold, by text hash, read
        in the same query: a save's unchanged chunks then need no look-up in the embedding cache (16
        hashes took a first save after a restart ~75 ms under load). Not filled when the rows are the
        ones our last write left (``_own_rows``): their vectors are in the caller's memory already.
        """
        if not self._ready():
            return {}
        if paths is None:
            return self._all_path_rows()
        wanted = sorted(set(paths))
        version = self._chunks.version  # read first: a write in between only makes the ids look stale
        for own in (self._own_rows, self._ahead_rows):
            if own is not None and own[0] == version and own[1].issuperset(wanted):
                # What our last write left there, or a save's preparation read (its vectors are in memory).
                self._held_ids = own[:3]
                return {p: own[3][p] for p in wanted if p in own[3]}
        found: dict[str, PathRows] = {}
        ids: dict[str, set[str]] = {}
        for start in range(0, len(wanted), 500):
            found.update(self._path_rows(sql_in("path", wanted[start : start + 500]), ids, vectors))
        # A save reads these paths' rows here and their ids again for its upsert (``_row_ids``): one read.
        self._held_ids = (version, frozenset(wanted), ids)
        return found

    def _path_rows(
        self,
        where: str | None,
        ids: dict[str, set[str]] | None = None,
        vectors: dict[str, np.ndarray] | None = None,
    ) -> dict[str, PathRows]:
        """``ids``: filled with the ids of the rows read, per path; ``vectors``: with their model vectors."""
        query = self._chunks.search()
        if where:
            query = query.where(where)
        columns = ["path", "file_hash", *(["id"] if ids is not None else [])]
        columns += ["text_hash", "tier", "vector"] if vectors is not None else []
        table = query.select(columns).limit(None).to_arrow()
        if table.num_rows == 0:
            return {}
        if vectors is not None:
            matrix = _vectors(table)
            tiers = table["tier"].to_pylist()
            for i, key in enumerate(table["text_hash"].to_pylist()):
                if tiers[i] == TIER_MODEL:
                    vectors[key] = matrix[i]
        if ids is not None:
            for row_id, path in zip(table["id"].to_pylist(), table["path"].to_pylist(), strict=True):
                ids.setdefault(path, set()).add(row_id)
        grouped = table.group_by(["path", "file_hash"]).aggregate([("path", "count")]).to_pylist()
        counts: dict[str, int] = {}
        hashes: dict[str, set[str]] = {}
        for row in grouped:
            counts[row["path"]] = counts.get(row["path"], 0) + row["path_count"]
            hashes.setdefault(row["path"], set()).add(row["file_hash"])
        return {p: PathRows(counts[p], frozenset(hashes[p])) for p in counts}

    def inconsistent_paths(
        self, manifest: dict[str, FileRecord] | None = None, paths: Iterable[str] | None = None
    ) -> set[str]:
        """Paths (all, or among ``paths``) whose rows disagree with the manifest: left by a crash."""
        manifest = self.manifest() if manifest is None else manifest
        if paths is None:
            return inconsistent(manifest, self.path_rows())
        wanted = set(paths)
        return inconsistent({p: r for p, r in manifest.items() if p in wanted}, self.path_rows(wanted))

    # ----------------------------------------------------------------- the seal (engine/seal.py)
    def sealed_rows(self, manifest: dict[str, FileRecord]) -> dict[str, PathRows] | None:
        """``path_rows()``, known without reading a row: when a seal names both tables' current versions
        and ``manifest`` (the whole manifest, read at them) and the chunk table hold what it counted.
        None: no seal applies, read the rows. Call it holding the write lock, as ``path_rows`` before a run."""
        from .seal import read_seal

        if not self._ready():
            return None
        seal = read_seal(self.path / LANCE_DIR)
        if seal is None or (seal.chunks_version, seal.files_version) != (self._chunks.version, self._files.version):
            return None
        chunks = sum(record.chunk_count for record in manifest.values())
        if (seal.entries, seal.chunks) != (len(manifest), chunks) or self._row_count(seal.chunks_version) != chunks:
            return None
        return {p: PathRows(r.chunk_count, frozenset((r.content_hash,))) for p, r in manifest.items() if r.chunk_count}

    def seal(self) -> bool:
        """Check every chunk row against the manifest and, when they agree, seal these table versions so
        that the next start skips that check (engine/seal.py). Never waits for the write lock: False when
        another writer holds it, the index is of another version, or rows and manifest disagree."""
        from .seal import Seal, read_seal, write_seal

        if self.stale_reason is not None:
            return False  # the writer that rebuilds it checks it; no seal names a stale index's tables
        if not self._write_lock.acquire(blocking=False):
            return False  # a write of this process is running: never wait for it (the caller is leaving)
        try:
            with self.writer(wait=False):
                versions = (self._chunks.version, self._files.version)
                held = read_seal(self.path / LANCE_DIR)
                if held is not None and (held.chunks_version, held.files_version) == versions:
                    return True  # sealed at these versions already (a restart that wrote nothing)
                manifest = self.manifest()
                if inconsistent(manifest, self.path_rows()):
                    return False  # the next index run heals them first
                chunks = sum(record.chunk_count for record in manifest.values())
                if self._row_count(versions[0]) != chunks or (self._chunks.version, self._files.version) != versions:
                    return False
                write_seal(self.path / LANCE_DIR, Seal(versions[0], versions[1], len(manifest), chunks))
                return True
        except IndexLockedError:
            return False
        finally:
            self._write_lock.release()

    # ----------------------------------------------------------------- embedding cache
    def _all_path_rows(self) -> dict[str, PathRows]:
        """``path_rows()`` of the whole table, grouped batch by batch: a whole read of the 178K rows'
        paths and file hashes peaked at +90 MB and left +68 MB with the process (+32 / +31 so)."""
        counts: dict[str, int] = {}
        hashes: dict[str, set[str]] = {}
        import pyarrow as pa

        for batch in self._chunks.search().select(["path", "file_hash"]).limit(None).to_batches(SCAN_BATCH_ROWS):
            grouped = pa.Table.from_batches([batch]).group_by(["path", "file_hash"]).aggregate([("path", "count")])
            for row in grouped.to_pylist():
                counts[row["path"]] = counts.get(row["path"], 0) + row["path_count"]
                hashes.setdefault(row["path"], set()).add(row["file_hash"])
        return {p: PathRows(counts[p], frozenset(hashes[p])) for p in counts}

    def cached_vectors(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Known vectors of these text hashes: the embedding cache, then the chunk rows' model vectors.

        The rows are the second source because the cache is bounded: a vector evicted for being
        old may still sit in the rows of a file that has not changed since.
        """
        wanted = sorted(set(hashes))
        if not wanted or not self._ready():
            return {}
        found = self._cache.lookup(wanted)
        missing = [h for h in wanted if h not in found] if self._cache.may_have_evicted() else []
        for part in _parts(missing):
            table = (
                self._chunks.search()
                .where(f"tier = {TIER_MODEL} AND {sql_in('text_hash', part)}")
                .select(["text_hash", "vector"])
                .limit(None)
                .to_arrow()
            )
            vectors = _vectors(table)
            for i, key in enumerate(table["text_hash"].to_pylist()):
                found.setdefault(key, vectors[i])
        return found

    def read_ahead(self, path: str, ids: Sequence[str], hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """For a save of ``path`` about to be made (engine/save_ahead.py, during its debounce): read what
        its re-index reads first, and probe the index pages its commits use. Returns the model vectors
        the file's rows hold, by text hash.

        The path's rows (counts, file hashes, ids) are kept with the table version they were read at:
        ``path_rows`` and ``_row_ids`` of that version take them instead of reading again, as they take
        what our last write left (``_own_rows``). The probes: the manifest entry (``files.path``), the
        ids the new rows will have (``chunks.id``, which the upsert joins through) and the embedding
        cache's entries of the file's texts (``embeddings.text_hash``, the cache commit's join): the
        first save after a restart read those pages cold, its commits 2-10x slower than the next ones'.
        """
        if not self._ready():
            return {}
        version = self._chunks.version  # read first: a write in between only makes the rows look stale
        held: dict[str, set[str]] = {}
        vectors: dict[str, np.ndarray] = {}
        rows = self._path_rows(sql_in("path", [path]), held, vectors)
        self._ahead_rows = (version, frozenset([path]), held, rows)
        self.manifest([path])
        for part in _parts(sorted(set(ids))):
            self._chunks.search().where(sql_in("id", part)).select(["id"]).limit(None).to_arrow()
        self._cache.lookup(hashes)
        return vectors

    def _cache_vectors(self, vectors: dict[str, np.ndarray], used: dict[str, np.ndarray] | None = None) -> None:
        self._cache.put(vectors, used)

    def _evict(self) -> None:
        """Bound the embedding cache, after a batch's commits (never between its cache and chunk commits)."""
        evicted = self._cache.evict()
        if evicted:
            from .metrics import metrics

            metrics().cache_evictions.inc(evicted)

    # ----------------------------------------------------------------- chunk writes
    def replace_files(
        self,
        files: Sequence[FileRecord],
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        lexical: Sequence[str],
        *,
        removed: Sequence[str] = (),
        new_vectors: dict[str, np.ndarray] | None = None,
        used_vectors: dict[str, np.ndarray] | None = None,
        tiers: Sequence[int] | None = None,
        new_paths: bool = False,
        cache_last: bool = False,
    ) -> None:
        """Atomically replace every chunk of ``files`` (and drop ``removed``) with ``chunks``.

        ``chunks`` of one file come in file order (their ordinal is part of the row id); ``tiers``
        defaults to model vectors for every chunk. ``new_vectors`` (embedded for this batch) go to
        the embedding cache and ``used_vectors`` (taken from it) are marked used, in one commit first.
        ``new_paths``: the caller knows that neither the chunk table nor the manifest holds any of
        ``files`` (a first index), so both commits are plain appends: a ``merge_insert`` scans the
        whole table and costs more with every batch written.
        ``cache_last``: the embedding-cache commit comes after the chunk and manifest commits, not first
        (a save: its rows are searchable one commit sooner; a crash in between loses the cache entries of
        a few vectors, which the rows still hold, so at worst they are embedded again).
        """
        if len(chunks) != len(vectors) or len(chunks) != len(lexical):
            raise StoreError("internal error: chunks, vectors and lexical rows differ in length")
        if tiers is not None and len(tiers) != len(chunks):
            raise StoreError("internal error: chunks and tiers differ in length")
        if len(vectors) and vectors.shape[1] != self.dimension:
            raise StoreError(f"vectors have dimension {vectors.shape[1]}, the index expects {self.dimension}")
        paths = [f.path for f in files] + list(removed)
        if not paths:
            return
        file_hashes = {f.path: f.content_hash for f in files}
        if len(file_hashes) != len(files) or file_hashes.keys() & set(removed):
            raise StoreError("internal error: a file is listed twice in one write")
        ordinals: dict[str, int] = {}
        ids: list[str] = []
        for c in chunks:
            if c.path not in file_hashes:
                raise StoreError(f"internal error: chunk of {c.path}, which is not among the files written")
            ordinal = ordinals.get(c.path, 0)
            ordinals[c.path] = ordinal + 1
            ids.append(chunk_id(c, ordinal))
        import pyarrow as pa

        with self.writer(wait=True):
            if not cache_last:
                self._cache_vectors(new_vectors or {}, used_vectors)
            data = pa.Table.from_arrays(
                [
                    pa.array(ids, pa.string()),
                    pa.array([c.path for c in chunks], pa.string()),
                    pa.array([c.language for c in chunks], pa.string()),
                    pa.array([c.symbol for c in chunks], pa.string()),
                    pa.array([c.kind for c in chunks], pa.string()),
                    pa.array([c.parent for c in chunks], pa.string()),
                    pa.array([c.start_line for c in chunks], pa.int32()),
                    pa.array([c.end_line for c in chunks], pa.int32()),
                    pa.array([c.content for c in chunks], pa.string()),
                    pa.array([c.hash for c in chunks], pa.string()),
                    pa.array([file_hashes[c.path] for c in chunks], pa.string()),
                    pa.array(list(tiers) if tiers is not None else [TIER_MODEL] * len(chunks), pa.int8()),
                    pa.array(list(lexical), pa.string()),
                    _vector_array(vectors, self.dimension),
                ],
                schema=self._chunk_schema(),
            )
            fault_point("chunks.before")
            append = new_paths and not removed
            before = self._chunks.version
            with self._names.writing(before):  # a query that sees these commits waits for the table's patch
                patched_from, patched, blanks = before, paths, 0
                if append:
                    if data.num_rows:
                        self._chunks.add(data)
                else:
                    patched_from, blanks = self._replace_rows(
                        before, data, [f.path for f in files], ids, removed, tiers
                    )
                    if blanks:  # a shrink: its blank rows' version was patched, now they are gone
                        patched = [*paths, VANISHED_PATH]
                fault_point("chunks.after")
                self._after_chunk_commit(patched_from, patched, tiers, placeholders=blanks)
            fault_point("manifest.before")
            self._put_manifest(files, removed, append=append)
            fault_point("manifest.after")
            if cache_last:
                self._cache_vectors(new_vectors or {}, used_vectors)
            self._evict()
            self._after_write(len(chunks))

    def _after_chunk_commit(
        self, before: int, paths: Sequence[str], tiers: Sequence[int] | None, *, placeholders: int = 0
    ) -> None:
        """Carry what queries keep per table version over our own write instead of recounting it: the
        name table (patched for ``paths``) and the count of placeholder rows (none when there were none
        but the ``placeholders`` this write deleted, and it added none). Never fails the write: a query
        rebuilds what was not carried."""
        after = self._chunks.version
        self._own_rows = None
        if after == before:
            return
        read: list[pa.Table] = []

        def rows() -> pa.Table:
            if not read:
                read.append(self._name_rows(paths))
            return read[0]

        try:
            self._names.patch(before, after, paths, rows, self._chunks.count_rows)
            if len(paths) <= OWN_WRITE_PATHS:
                self._own_rows = (after, frozenset(paths), *_rows_by_path(rows()))
        except Exception as exc:  # noqa: BLE001 - the next query rebuilds the table from a scan
            log.debug("name table patch failed: %s", exc)
        if self._pending == (before, placeholders) and (
            tiers is None or min(tiers, default=TIER_MODEL) > TIER_PLACEHOLDER
        ):
            self._pending = (after, 0)

    def _name_rows(self, paths: Sequence[str]) -> pa.Table:
        """The name columns of these paths' rows, with their row ids (through the ``path`` scalar index),
        and the payload's columns unless the name table is one of a large table (it keeps none)."""
        import pyarrow as pa

        payload = _PATCH_PAYLOAD if self._names.may_carry_payload() else _PATCH_COLUMNS
        parts = [
            self._chunks.search()
            .where(sql_in("path", part))
            .select(["id", "file_hash", *NAME_COLUMNS, *payload])
            .with_row_id(True)
            .limit(None)
            .to_arrow()
            for part in _parts(sorted(set(paths)))
        ]
        return pa.concat_tables(parts) if len(parts) != 1 else parts[0]

    def _replace_rows(
        self,
        before: int,
        data: pa.Table,
        written: list[str],
        ids: list[str],
        removed: Sequence[str],
        tiers: Sequence[int] | None,
    ) -> tuple[int, int]:
        """The chunk commit of ``replace_files`` for paths that may hold rows (see engine/row_ids.py).

        Each written file's old rows are all overwritten by new ones (ids taken over) in one indexed
        ``merge_insert``, and removed files go in one delete: each file changes in one commit. A file
        that shrank leaves old rows no new row takes over: the same commit overwrites them with blank
        rows under ``VANISHED_PATH`` (found by no search: no text, no terms, no names, a placeholder vector,
        which vector search leaves out), and a delete by id follows. Returns the table version the
        commits after the last name-table patch started from (``before``, or the blank rows' version) and
        the number of blank rows deleted since.
        """
        import pyarrow as pa

        from .row_ids import plan_ids

        old = self._row_ids(written)
        taken, surplus = plan_ids(data["path"].to_pylist(), ids, old)
        data = data.set_column(data.schema.get_field_index("id"), "id", pa.array(taken, pa.string()))
        if surplus:
            data = pa.concat_tables([data, self._blank_rows(surplus)])
        if data.num_rows:
            self._chunks.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(data)
        base = before
        if surplus:
            base = self._chunks.version
            # The name table of that version (blank rows included), so a query reading it needs no rebuild.
            self._after_chunk_commit(before, [*written, VANISHED_PATH], tiers)
            if self._pending == (base, 0):  # carried as "none" over rows that are all placeholders: not so
                self._pending = (base, len(surplus))
            fault_point("chunks.vanished")  # every file new; blank rows wait for their delete
            for part in _parts(surplus):
                self._chunks.delete(sql_in("id", part))
        if removed:
            fault_point("chunks.mid")  # written files new, removed ones not yet gone: the manifest says both
            for part in _parts(list(removed)):
                self._chunks.delete(sql_in("path", part))
        return base, len(surplus)

    def _blank_rows(self, ids: Sequence[str]) -> pa.Table:
        """Rows no search finds, under ``VANISHED_PATH``: what a shrinking file's surplus rows become."""
        import pyarrow as pa

        count = len(ids)
        empty = pa.array([""] * count, pa.string())
        zero = pa.array([0] * count, pa.int32())
        columns = {
            "id": pa.array(list(ids), pa.string()),
            "path": pa.array([VANISHED_PATH] * count, pa.string()),
            "start_line": zero,
            "end_line": zero,
            "tier": pa.array([TIER_PLACEHOLDER] * count, pa.int8()),
            "vector": _vector_array(np.zeros((count, self.dimension), dtype=np.float32), self.dimension),
        }
        schema = self._chunk_schema()
        return pa.Table.from_arrays([columns.get(f.name, empty) for f in schema], schema=schema)

    def _row_ids(self, paths: Sequence[str]) -> dict[str, set[str]]:
        """The ids of the chunk rows of these paths (through the ``path`` scalar index), or as ``path_rows``
        read them for the same table version (the save's first read, under the same write lock)."""
        known = self._held_ids
        self._held_ids = None
        if known is not None and known[0] == self._chunks.version and known[1].issuperset(paths):
            return {path: set(known[2][path]) for path in paths if path in known[2]}
        held: dict[str, set[str]] = {}
        for part in _parts(sorted(set(paths))):
            table = self._chunks.search().where(sql_in("path", part)).select(["id", "path"]).limit(None).to_arrow()
            for row_id, path in zip(table["id"].to_pylist(), table["path"].to_pylist(), strict=True):
                held.setdefault(path, set()).add(row_id)
        return held

    def remove_files(self, paths: Sequence[str]) -> None:
        if not paths:
            return
        with self.writer(wait=True):
            fault_point("remove.before")
            # Rows first: a crash in between leaves manifest entries without rows, which re-index.
            for start in range(0, len(paths), 500):
                self._chunks.delete(sql_in("path", paths[start : start + 500]))
            fault_point("remove.after")
            for start in range(0, len(paths), 500):
                self._files.delete(sql_in("path", paths[start : start + 500]))
            self._after_write()

    def clear(self) -> None:
        with self.writer(wait=True):
            fault_point("remove.before")
            self._chunks.delete("true")
            fault_point("remove.after")
            self._files.delete("true")
            self._after_write()

    def _after_write(self, rows: int = TRIM_MIN_ROWS) -> None:
        """Count a write; compact every ``COMPACT_EVERY_WRITES`` (or mark it due, ``defer_compaction``)."""
        self._writes += 1
        if self._writes % COMPACT_EVERY_WRITES == 0:
            if self.defer_compaction:  # the caller compacts after its write returns (IndexHost: on its worker)
                self.compaction_due = True
            else:
                self.optimize()
                rows = TRIM_MIN_ROWS
        if rows >= TRIM_MIN_ROWS:
            # A large write's scratch memory, freed by LanceDB, back to the system (engine/memory.py);
            # after a one-file save there is little to give back, and the trim's heap walk cost ~9 ms.
            trim_malloc()

    def compact_if_due(self, preempt: Callable[[], bool] | None = None) -> None:
        """The compaction ``_after_write`` deferred, if any. ``preempt``: see ``optimize``."""
        if self.compaction_due:
            self.optimize(preempt)  # MaintenancePreempted leaves it due
            self.compaction_due = False
            trim_malloc()

    # ----------------------------------------------------------------- the dense tier
    def pending_count(self, version: int | None = None) -> int:
        """Rows still holding a placeholder vector; counted once per table version, so a query pays
        one version look-up (well under a millisecond) and no scan. ``version``: the caller read it."""
        if not self._ready():
            return 0
        version = self._chunks.version if version is None else version
        known = self._pending
        if known is not None and known[0] == version:
            return known[1]
        count = self._chunks.count_rows(f"tier = {TIER_PLACEHOLDER}")
        self._pending = (version, count)
        return count

    def pending_paths(self) -> dict[str, int]:
        """Placeholder rows per path (what the dense tier still has to embed), read in batches.

        One count per path, not a row per placeholder: at 178K rows a whole read of their id, path
        and start line peaked at +127 MB, and its ids stayed held for the whole dense tier (~65 MB).
        """
        if not self._ready() or not self.pending_count():
            return {}
        counts: dict[str, int] = {}
        query = self._chunks.search().where(f"tier = {TIER_PLACEHOLDER}").select(["path"]).limit(None)
        for batch in query.to_batches(SCAN_BATCH_ROWS):
            for path in batch.column("path").to_pylist():
                counts[path] = counts.get(path, 0) + 1
        return counts

    def pending_ids(self, paths: Iterable[str]) -> list[str]:
        """Ids of the placeholder rows of ``paths``, by path and start line (one dense-tier batch)."""
        if not self._ready():
            return []
        rows: list[dict[str, Any]] = []
        for part in _parts(sorted(set(paths))):
            where = f"tier = {TIER_PLACEHOLDER} AND {sql_in('path', part)}"
            query = self._chunks.search().where(where).select(["id", "path", "start_line"]).limit(None)
            rows.extend(query.to_arrow().to_pylist())
        rows.sort(key=lambda r: (r["path"], r["start_line"]))
        return [r["id"] for r in rows]

    def set_vectors(
        self,
        ids: Sequence[str],
        text_hashes: Sequence[str],
        vectors: np.ndarray,
        *,
        tier: int = TIER_MODEL,
        new_vectors: dict[str, np.ndarray] | None = None,
        used_vectors: dict[str, np.ndarray] | None = None,
        wait: bool = True,
    ) -> int:
        """Give rows a better vector; returns how many rows took it.

        Only updates: a row takes the vector when its id is still there, still carries the same text
        and has a lower tier. A file re-indexed in the meantime has other rows (and ids), which must
        not get stale rows back, so nothing is ever inserted. One commit (after the cache's): a crash
        leaves each row with its old vector or its new one, and placeholders are embedded next run.
        """
        if not (len(ids) == len(text_hashes) == len(vectors)):
            raise StoreError("internal error: ids, text hashes and vectors differ in length")
        if len(vectors) and vectors.shape[1] != self.dimension:
            raise StoreError(f"vectors have dimension {vectors.shape[1]}, the index expects {self.dimension}")

        with self.writer(wait=wait):
            self._cache_vectors(new_vectors or {}, used_vectors)
            if not len(ids):
                self._evict()
                return 0
            data = self._full_rows(ids, text_hashes, vectors, tier)
            fault_point("vectors.before")
            # The whole rows (read by id through its B-tree), so the join goes through that index too:
            # LanceDB 0.40's indexed join panics on a partial-schema source ("Incorrect number of arrays
            # for StructArray"), and its scan join read every row of the table, vectors and text
            # included: +425 MB per 256-row commit at 179K rows (BENCHMARKS.md "memory (session 5)").
            # The condition still keeps a row that another writer changed since it was read here.
            result = (
                self._chunks.merge_insert("id")
                .when_matched_update_all(where=f"target.tier < {int(tier)} AND target.text_hash = source.text_hash")
                .execute(data)
            )
            fault_point("vectors.after")
            self._evict()
            self._after_write(len(ids))
        return int(getattr(result, "num_updated_rows", len(ids)) or 0)

    def _full_rows(self, ids: Sequence[str], text_hashes: Sequence[str], vectors: np.ndarray, tier: int) -> pa.Table:
        """The current rows of ``ids`` that still carry ``text_hashes`` below ``tier``, with the new vectors."""
        import pyarrow as pa

        wanted = {row_id: (text_hash, i) for i, (row_id, text_hash) in enumerate(zip(ids, text_hashes, strict=True))}
        parts = []
        for part in _parts(list(wanted)):
            parts.append(self._chunks.search().where(sql_in("id", part)).limit(len(part) + 16).to_arrow())
        current = pa.concat_tables(parts) if parts else None
        if current is None or not current.num_rows:
            return self._chunks.schema.empty_table()
        keep = [
            row_id in wanted and wanted[row_id][0] == text_hash and row_tier < tier
            for row_id, text_hash, row_tier in zip(
                current["id"].to_pylist(), current["text_hash"].to_pylist(), current["tier"].to_pylist(), strict=True
            )
        ]
        current = current.filter(pa.array(keep, pa.bool_()))
        order = [wanted[row_id][1] for row_id in current["id"].to_pylist()]
        current = current.set_column(
            current.schema.get_field_index("tier"), "tier", pa.array([tier] * current.num_rows, pa.int8())
        )
        return current.set_column(
            current.schema.get_field_index("vector"), "vector", _vector_array(vectors[order], self.dimension)
        )

    # ----------------------------------------------------------------- indexes and maintenance
    def ensure_indexes(self, *, vector_index_min_rows: int) -> None:
        """Full-text index as soon as there are rows; an IVF vector index once the table is large.

        Flat search is exact and fast enough below a few ten thousand rows (13 ms at 10K here); above,
        the index of ``ivf_config``, whose refine step keeps recall@10 against exact search above 0.95.
        """
        if self._indexes_complete:  # nothing to build since the last check (see _indexes_complete)
            return
        with self.writer(wait=True):
            rows = self._chunks.count_rows()
            if rows == 0:
                return
            built = self._ensure_scalar_indexes()
            names = {idx.columns[0]: idx for idx in self._chunks.list_indices()}
            fts = names.get(FTS_COLUMN)
            fts_stem = (getattr(fts, "index_details", None) or {}).get("stem") if fts else None
            # In this process: at 85K rows the full-text build adds ~60 MB (178K: ~200 MB), less than a
            # child process's own ~165 MB would add to the peak (BENCHMARKS.md "writes (session 4)").
            if fts is None or fts_stem != FTS_STEM:
                built = True
                fault_point("fts.before")
                self._chunks.create_index(FTS_COLUMN, replace=True, config=fts_config())
                fault_point("fts.after")
            # Partitions trained on placeholder vectors would be useless: wait for the dense tier.
            # An index built without a target partition size (older semcode) collapses to a few huge
            # partitions at its first optimize (see ivf_config), or already has: built again; so is one
            # of another type (older semcode's IVF_FLAT: four times the memory).
            vector = names.get("vector")
            stale = vector is not None and (
                not ivf_current(vector) or self._ivf_segments(vector.name) > IVF_MAX_SEGMENTS
            )
            if (vector is None or stale) and rows >= vector_index_min_rows and not self.pending_count():
                partition_rows = ivf_partition_rows(rows)
                log.info(
                    "building the vector index (%s) over %d rows (%d rows a partition%s)",
                    VECTOR_INDEX_TYPE,
                    rows,
                    partition_rows,
                    f", replacing a {getattr(vector, 'index_type', '?')} of another version" if stale else "",
                )
                if not self._in_child("ivf", {"partition_rows": partition_rows}, rows):
                    self._chunks.create_index("vector", replace=True, config=ivf_config(partition_rows))
                built = True
            # Every index there and current: a save does not look again (5 look-ups of index lists and
            # stats, ~5-30 ms a save under load) until a compaction adds segments or the tables reopen.
            self._indexes_complete = not built and vector is not None and not stale

    def _ivf_segments(self, name: str) -> int:
        """Segments of the vector index (the built one and the deltas optimize added)."""
        stats = self._chunks.index_stats(name)
        return int(getattr(stats, "num_indices", None) or 1)

    def _in_child(
        self,
        operation: str,
        params: dict[str, Any],
        rows: int | None = None,
        preempt: Callable[[], bool] | None = None,
    ) -> bool:
        """Run a maintenance operation of a large index in the ``maintainer`` child (engine/maintenance.py).

        False: do it in this process (a small index, no maintainer set, or the child could not run).
        Called with the write lock held; the child's commits are read here at the next access.
        """
        if self.maintainer is None:
            return False
        if (self._chunks.count_rows() if rows is None else rows) < MAINTENANCE_CHILD_MIN_ROWS:
            return False
        # The child's peak (~500 MB at 178K rows) adds to this process's: what this process freed goes
        # back to the system before the child starts, not after (phase 2 wrote 256-row batches, which
        # skip the trim of ``_after_write``). LanceDB's caches too: what they hold describes the
        # versions the child is about to replace (each step writes the indexes anew), and a query
        # meanwhile reads back only what it uses.
        self._fresh_caches()
        try:
            lance = self.path / LANCE_DIR
            done = self.maintainer(lance, operation, params, preempt=preempt)
        except MaintenancePreempted:
            self._fresh_caches()  # the child may have committed just before it was stopped
            raise
        if done:
            self._fresh_caches()
        return done

    def _fresh_caches(self) -> None:
        """Open the tables again with new LanceDB caches, after a child rewrote fragments and indexes.

        What the caches held describes the versions before it (each compaction writes the indexes anew),
        and their LRU bound kept it: 31 -> 62 -> 87 MB over the three compactions of a phase 2 at 179K
        rows (BENCHMARKS.md, "memory6 (session 6)"). Called with the write lock held; a reader in
        another thread finishes on the table object it holds.
        """
        evicted = self._cache.evicted
        self._session = None
        self._open_tables()
        self._cache.evicted = evicted
        trim_malloc()

    def _ensure_scalar_indexes(self) -> bool:
        """B-tree indexes on the columns writes look rows up by (see ``SCALAR_INDEXES``); built once.
        True when one was built.

        Rows written after a build are not in the index until the next ``optimize``; LanceDB scans
        them alongside, so a look-up is always complete.
        """
        built = False
        for table, columns in (
            (self._chunks, ("id", "path")),
            (self._files, ("path",)),
            (self._embeddings, ("text_hash",)),
        ):
            have = {idx.columns[0] for idx in table.list_indices()}
            for column in columns:
                if column not in have:
                    if not table.count_rows():
                        built = True  # not complete: built once the table has rows
                        continue
                    fault_point("scalar.before")
                    table.create_scalar_index(column, index_type="BTREE")
                    fault_point("scalar.after")
                    built = True
        return built

    def optimize(self, preempt: Callable[[], bool] | None = None) -> None:
        """Compact fragments, fold new rows into the indexes, drop old versions.

        ``preempt``: asked while a maintenance child runs; True stops it (``MaintenancePreempted``, see
        engine/maintenance.py). A step run in this process is not stopped."""
        with self.writer(wait=True):
            self._indexes_complete = False  # the vector index gained a segment: ensure_indexes counts them
            if not self._optimize_in_children(preempt):
                optimize_tables([self._chunks, self._files, self._embeddings])

    def _optimize_in_children(self, preempt: Callable[[], bool] | None = None) -> bool:
        """A large index's optimize as several short-lived children, each alone beside this process.

        One LanceDB ``optimize`` of a from-scratch 179K-row chunk table (compaction of ~50 fragments, the
        vector and full-text indexes' deltas over every row) peaked at 640-700 MB in its child; in steps
        the largest is the vector index's build, 466 MB (BENCHMARKS.md, "indexrss7 (session 7)"):
        an index that covers fewer rows than it misses is built anew first (``_rebuilds``), the chunk
        table is compacted alone, then the manifest and the embedding cache in a child of their own (the
        chunk table's compaction left ~230 MB that its peak stacked on). False: a small index, or no
        ``maintainer``; do it all in this process. A step whose child fails runs here instead.
        """
        steps = self.maintenance_steps()
        if steps is None:
            return False
        rows = self._row_count()
        run_steps(
            steps,
            lambda step: self._in_child(step.operation, step.params, rows, preempt),
            lambda step: optimize_tables([self._table_named(name) for name in step.params["tables"]]),
        )
        return True

    def maintenance_steps(self) -> list[Step] | None:
        """What ``optimize`` runs in children now (``_optimize_in_children``): the rebuilds, the chunk
        table's compaction, then the small tables'. None: a small index, or no ``maintainer``."""
        if self.maintainer is None:
            return None
        rows = self._row_count()
        if rows < MAINTENANCE_CHILD_MIN_ROWS:
            return None
        return [
            *(Step(operation, params, rebuild=True) for operation, params in self._rebuilds(rows)),
            Step("optimize", {"tables": [CHUNKS]}),
            Step("optimize", {"tables": [FILES, EMBEDDINGS]}),
        ]

    def _table_named(self, name: str) -> Table:
        return {CHUNKS: self._chunks, FILES: self._files, EMBEDDINGS: self._embeddings}[name]

    def _rebuilds(self, rows: int) -> list[tuple[str, dict[str, Any]]]:
        """Chunk-table indexes to build anew before a compaction: those covering fewer rows than they
        miss (after ``index --full``, a rechunk, a large branch switch).

        A compaction folds unindexed rows into each index as a delta; for the vector index that pass
        held every unindexed vector at once (+340 MB at 179K rows, the same as a build), on top of the
        compaction's own rewrite. Built first in its own child, the index covers every row, and the
        compaction only remaps it. A build also trains the partitions on the rows there now, where a
        delta keeps the centroids of rows that may be gone. Not while vectors are pending: partitions
        trained on placeholders would be useless (``ensure_indexes`` waits for them too).
        """
        names = {idx.columns[0]: idx for idx in self._chunks.list_indices()}
        steps: list[tuple[str, dict[str, Any]]] = []
        fts = names.get(FTS_COLUMN)
        if fts is not None and self._mostly_unindexed(fts.name):
            steps.append(("fts", {}))
        vector = names.get("vector")
        if (
            vector is not None
            and ivf_current(vector)
            and self._mostly_unindexed(vector.name)
            and not self.pending_count()
        ):
            steps.append(("ivf", {"partition_rows": ivf_partition_rows(rows)}))
        return steps

    def _mostly_unindexed(self, name: str) -> bool:
        stats = self._chunks.index_stats(name)
        if stats is None:
            return False
        return int(stats.num_unindexed_rows or 0) > int(stats.num_indexed_rows or 0)

    def _row_count(self, version: int | None = None) -> int:
        """Rows of the chunk table, counted once per table version (as ``pending_count``)."""
        version = self._chunks.version if version is None else version
        known = self._rows
        if known is not None and known[0] == version:
            return known[1]
        rows = self._chunks.count_rows()
        self._rows = (version, rows)
        return rows

    def has_vector_index(self) -> bool:
        if not self._ready():
            return False
        return any(idx.columns[0] == "vector" for idx in self._chunks.list_indices())

    # ----------------------------------------------------------------- reads
    def count_chunks(self) -> int:
        return self._chunks.count_rows() if self._ready() else 0

    def count_files(self) -> int:
        return self._files.count_rows() if self._ready() else 0

    def count_cached(self) -> int:
        """Vectors in the persistent embedding cache."""
        return self._cache.count() if self._ready() else 0

    def vector_search(
        self,
        vector: np.ndarray,
        *,
        limit: int,
        where: str | None = None,
        content: bool = True,
        version: int | None = None,
    ) -> list[dict[str, Any]]:
        """``content=False``: rows without their text, with ``_rowid`` for ``contents`` (the final hits).
        ``version``: the table version the caller read (``chunk_version``), else read here."""
        if not self._ready():
            return []
        # One version read for both counts: each is a round trip to LanceDB's event-loop thread, ~1 ms
        # of a query's critical path when the search's other threads hold the GIL (BENCHMARKS.md, querylat).
        version = self._chunks.version if version is None else version
        if self.pending_count(version):  # a placeholder is no answer; no filter at all once none is left
            where = f"tier > {TIER_PLACEHOLDER}" + (f" AND ({where})" if where else "")
        names = None if content else self._names.current(version)
        if names is not None and names.has_candidate_columns:
            found = self._nearest_row_ids(vector, limit, version, where)
            if found is not None:
                return self._with_candidate_columns(found, names)
        query = nearest(self._chunks, vector, limit, nprobes=ivf_nprobes(self._row_count(version)))
        if where:
            query = query.where(where, prefilter=True)
        if not content:
            if names is not None and names.has_candidate_columns:
                found = query.select(["_distance"]).with_row_id(True).to_arrow()
                return self._with_candidate_columns(found, names)
            return query.select([*_LIGHT_COLUMNS, "_distance"]).with_row_id(True).to_list()
        return query.select([*_RESULT_COLUMNS, "_distance"]).to_list()

    def text_search(
        self,
        terms: str,
        *,
        limit: int,
        where: str | None = None,
        content: bool = True,
        lex: bool = True,
        version: int | None = None,
    ) -> list[dict[str, Any]]:
        """``content=False``: as ``vector_search``; ``lex=False`` also leaves out the matched rows'
        ``lex`` (the caller works the shown hits' terms out from their texts)."""
        if not terms.strip() or not self._ready():
            return []
        query = self._chunks.search(terms, query_type="fts", fts_columns=FTS_COLUMN).limit(limit)
        if where:
            query = query.where(where, prefilter=True)
        try:
            if not content:
                names = self._names.current(version) if version is not None and not lex else None
                if names is not None and names.has_candidate_columns:
                    found = self._full_text_row_ids(terms, limit, where)
                    if found is None:
                        found = query.select(["_score"]).with_row_id(True).to_arrow()
                    return self._with_candidate_columns(found, names)
                return query.select([*_LIGHT_COLUMNS, FTS_COLUMN, "_score"]).with_row_id(True).to_list()
            return query.select([*_RESULT_COLUMNS, FTS_COLUMN, "_score"]).to_list()
        except Exception as exc:  # noqa: BLE001 - e.g. no FTS index yet on a fresh table
            log.debug("full-text search unavailable: %s", exc)
            return []

    def rows(self, where: str, *, columns: Sequence[str] | None = None, limit: int = 10_000) -> list[dict[str, Any]]:
        if not self._ready():
            return []
        query = self._chunks.search().where(where).limit(limit)
        return query.select(list(columns or _RESULT_COLUMNS)).to_list()

    def chunk_version(self) -> int | None:
        """The chunk table's version, None while the index is unreadable. A query reads it once and
        passes it to ``name_table`` and ``vector_search``: each read is a round trip to LanceDB's
        event-loop thread, and a query made five of them (BENCHMARKS.md, "Integration (lead), session 6")."""
        return self._chunks.version if self._ready() else None

    def name_table(self, version: int | None = None) -> NameTable | None:
        """The in-memory names of the current table version (or of ``version``, read by the caller),
        or None while it is (re)built in the background (the caller then filters in LanceDB)."""
        if not self._ready():
            return None
        return self._names.current(self._chunks.version if version is None else version)

    def _load_names(self) -> tuple[int, pa.Table]:
        version = self._chunks.version  # read first: a write in between only makes the table look stale
        columns = ["id", *NAME_COLUMNS, *(c for c in ROW_COLUMNS if c not in NAME_COLUMNS)]
        rows = self._row_count(version)
        if payload_fits(rows, self.dimension):  # a small table: vectors too, and maybe the texts (and BM25)
            columns += ["vector"] + (["content", FTS_COLUMN] if texts_fit(rows) else [])
        table = self._chunks.search().select(columns).with_row_id(True).limit(None).to_arrow()
        return version, table

    def _nearest_row_ids(self, vector: np.ndarray, limit: int, version: int, where: str | None) -> pa.Table | None:
        """``nearest``'s row ids and distances through LanceDB's async table (lance_reads), None if that failed."""
        try:
            return nearest_row_ids(
                self._chunks,
                vector,
                limit=limit,
                nprobes=ivf_nprobes(self._row_count(version)),
                refine_factor=VECTOR_REFINE_FACTOR,
                where=where,
            )
        except Exception as exc:  # noqa: BLE001 - the synchronous query answers instead
            log_fallback("vector search", exc)
            return None

    def _full_text_row_ids(self, terms: str, limit: int, where: str | None) -> pa.Table | None:
        try:
            return full_text_row_ids(self._chunks, terms, column=FTS_COLUMN, limit=limit, where=where)
        except Exception as exc:  # noqa: BLE001 - the synchronous query answers instead
            log_fallback("full-text search", exc)
            return None

    def _with_candidate_columns(self, found: pa.Table, names: NameTable) -> list[dict[str, Any]]:
        """A search's row ids and score (its one other column), as rows of ``_LIGHT_COLUMNS`` from the
        name table (rows written after it was built are read from LanceDB), in the search's order.

        A row id names the same row in every table version (a changed row is a new row), so a name
        table one write older than the search still answers for every row they share."""
        score = next(name for name in found.column_names if name != "_rowid")
        row_ids: list[int] = found["_rowid"].to_pylist()
        known = names.candidate_rows(row_ids) or {}
        missing = [r for r in row_ids if r not in known]
        if missing:
            taken = self._chunks.take_row_ids(missing).select(_LIGHT_COLUMNS).with_row_id().to_arrow()
            for row in taken.to_pylist():
                known[int(row["_rowid"])] = row
        rows: list[dict[str, Any]] = []
        for row_id, value in zip(row_ids, found[score].to_pylist(), strict=True):
            row = known.get(row_id)
            if row is not None:  # else gone since the search (a compaction in between): as a later search
                rows.append({**row, score: value})
        return rows

    def take_rows(self, row_ids: Sequence[int], *, columns: Sequence[str]) -> list[dict[str, Any]]:
        """Rows by LanceDB row id (``NameTable`` look-ups), any order; rows moved since are missing."""
        if not self._ready() or not row_ids:
            return []
        table = self._chunks.take_row_ids(list(row_ids)).select(list(columns)).to_arrow()
        if "vector" not in columns:
            rows: list[dict[str, Any]] = table.to_pylist()
            return rows
        # A vector as a float32 row of one matrix, not a Python list of 384 floats: the look-ups read
        # up to 260 rows a query, and the list round trip (Arrow -> floats -> numpy for the cosine)
        # cost ~14 ms of a query's CPU at 178K chunks (BENCHMARKS.md, querylat).
        matrix = _vectors(table)
        rows = table.drop_columns(["vector"]).to_pylist()
        for row, vector in zip(rows, matrix, strict=True):
            row["vector"] = vector
        return rows

    def contents(self, row_ids: Sequence[int]) -> dict[int, str]:
        """Row id -> content of rows read without their text; rows moved since are missing.

        Keyed by the row id alone, without reading the chunk ids: a row id names one row for good (a
        changed row is a new row), and a take's string column costs as much as the column asked for."""
        if not self._ready() or not row_ids:
            return {}
        table = self._chunks.take_row_ids(list(row_ids)).select(["content"]).with_row_id().to_arrow()
        return dict(zip(table["_rowid"].to_pylist(), table["content"].to_pylist(), strict=True))

    def take_vectors(self, row_ids: Sequence[int]) -> dict[int, np.ndarray]:
        """Row id -> vector (a float32 row of one matrix) of these rows; rows moved since are missing.

        The look-ups' rows come from the name table, so only their vectors are read, by row id as
        ``contents``: a take of 260 rows cost ~10 ms of CPU with their chunk ids, ~5 without, at 179K
        rows (BENCHMARKS.md, "query10 (session 10)")."""
        if not self._ready() or not row_ids:
            return {}
        table = self._chunks.take_row_ids(list(row_ids)).select(["vector"]).with_row_id().to_arrow()
        return dict(zip(table["_rowid"].to_pylist(), _vectors(table), strict=True))

    def chunk_vectors(self, where: str) -> tuple[list[dict[str, Any]], np.ndarray]:
        if not self._ready():
            return [], np.zeros((0, self.dimension), dtype=np.float32)
        table = self._chunks.search().where(where).select([*_RESULT_COLUMNS, "vector"]).limit(100_000).to_arrow()
        return table.drop_columns(["vector"]).to_pylist(), _vectors(table)

    # ----------------------------------------------------------------- integrity
    def check(self, workspace_root: Path | None = None, *, repair: bool = False) -> IntegrityReport:
        """Find bad vectors, duplicate ids, and every disagreement between chunk rows and the manifest.

        Disagreements: rows of paths not in the manifest (or whose file is gone), manifest entries
        whose rows are missing, fewer or more than recorded, or carry another file version. Repair
        (which takes the write lock, and so first rebuilds an index of another version) deletes the
        rows and forgets the manifest entries of the affected files, so the next incremental index
        embeds exactly those files again.
        """
        if repair:
            with self.writer(wait=True):
                return self._check(workspace_root, repair=True)
        return self._check(workspace_root, repair=False)

    def _check(self, workspace_root: Path | None, *, repair: bool) -> IntegrityReport:
        report = IntegrityReport()
        if not self._ready():
            report.version_ok = False
            report.version_note = f"{self.stale_reason}: the next `semcode index` rebuilds it"
            return report
        vector_type = self._chunks.schema.field("vector").type
        report.dimension_ok = getattr(vector_type, "list_size", self.dimension) == self.dimension
        manifest = self.manifest()
        counts: dict[str, int] = {}
        hashes: dict[str, set[str]] = {}
        seen_ids: set[str] = set()
        duplicate_ids: set[str] = set()
        bad_paths: set[str] = set()
        bad_text_hashes: set[str] = set()
        scan = self._chunks.search().select(["id", "path", "file_hash", "text_hash", "tier", "vector"]).limit(None)
        for batch in scan.to_batches(4096):
            vectors = _vectors(batch)
            # A zero vector is damage, except as the placeholder of a row the dense tier has not reached.
            placeholder = batch["tier"].to_numpy(zero_copy_only=False) == TIER_PLACEHOLDER
            finite = np.isfinite(vectors).all(axis=1) & ((np.abs(vectors).sum(axis=1) > 0) | placeholder)
            ids, paths = batch["id"].to_pylist(), batch["path"].to_pylist()
            file_hashes, text_hashes = batch["file_hash"].to_pylist(), batch["text_hash"].to_pylist()
            report.rows_checked += len(ids)
            for i in np.flatnonzero(~finite):
                report.bad_vectors.append(ids[i])
                bad_paths.add(paths[i])
                bad_text_hashes.add(text_hashes[i])
            for row_id, path, file_hash in zip(ids, paths, file_hashes, strict=True):
                counts[path] = counts.get(path, 0) + 1
                hashes.setdefault(path, set()).add(file_hash)
                if row_id in seen_ids:
                    duplicate_ids.add(row_id)
                    bad_paths.add(path)
                seen_ids.add(row_id)
        report.duplicate_ids = sorted(duplicate_ids)
        # A damaged cached vector would be copied into every chunk with that text, now or after a switch.
        report.bad_cached_vectors = sorted(set(self._cache.bad_hashes()))
        for path in counts:
            gone = workspace_root is not None and not os.path.lexists(workspace_root / path)
            if path not in manifest or gone:
                report.orphan_paths.append(path)
        for path, record in manifest.items():
            if counts.get(path, 0) != record.chunk_count:
                report.count_mismatch.append(path)
            elif path in hashes and hashes[path] != {record.content_hash}:
                report.stale_rows.append(path)
        if repair and not report.ok:
            if report.bad_vectors:
                self._chunks.delete(sql_in("id", report.bad_vectors))
            # A bad vector may have come from the cache: drop exactly those cache entries.
            self._cache.drop(sorted(bad_text_hashes | set(report.bad_cached_vectors)))
            damaged = sorted(bad_paths | set(report.orphan_paths) | set(report.count_mismatch) | set(report.stale_rows))
            for part in _parts(damaged):
                self._chunks.delete(sql_in("path", part))
            fault_point("repair.mid")
            for part in _parts(damaged):
                self._files.delete(sql_in("path", part))
            self._after_write()
            report.repaired = True
        return report

    def stats(self) -> dict[str, Any]:
        ready = self._ready()
        return {
            "files": self.count_files(),
            "chunks": self.count_chunks(),
            "cached_embeddings": self.count_cached(),
            "cache_limit": self.cache_limit,
            "pending_chunks": self.pending_count(),
            "vector_index": self.has_vector_index(),
            "versions": self._chunks.version if ready else 0,
            "path": str(self.path),
            "stale": self.stale_reason,
        }


def nearest(table: Table, vector: np.ndarray, limit: int, *, nprobes: int = 20) -> LanceVectorQueryBuilder:
    """The nearest chunk rows by cosine: one query shape for the local index and published snapshots."""
    from lancedb.query import LanceVectorQueryBuilder

    query = table.search(np.asarray(vector, dtype=np.float32), vector_column_name="vector")
    if not isinstance(query, LanceVectorQueryBuilder):  # what lancedb builds for a vector
        raise StoreError(f"lancedb built a {type(query).__name__} for a vector query")
    return (
        query.distance_type("cosine")
        .limit(limit)
        # Used by the IVF index once there is one; a flat search ignores them (same results), so
        # no per-query look-up of the table's indexes is needed. The refine step re-ranks the
        # quantised index's best candidates by their exact vectors (see VECTOR_REFINE_FACTOR).
        .nprobes(nprobes)
        .refine_factor(VECTOR_REFINE_FACTOR)
    )


# A save's rows carry the payload's columns while the name table may keep them: a patch of a small table needs them.
_PATCH_PAYLOAD = [*(c for c in PAYLOAD_COLUMNS if c not in NAME_COLUMNS), "content", FTS_COLUMN]
_PATCH_COLUMNS = [c for c in ROW_COLUMNS if c not in NAME_COLUMNS]  # a large table's: no vector, no text
_RESULT_COLUMNS = ["id", "path", "language", "symbol", "kind", "parent", "start_line", "end_line", "content"]
_LIGHT_COLUMNS = [c for c in _RESULT_COLUMNS if c != "content"]
