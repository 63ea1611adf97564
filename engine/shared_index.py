"""A team index on object storage: published once (from CI), searched by everyone, never re-embedded.

Layout under the shared location (``s3://bucket/prefix``, ``gs://...``, ``az://...`` or a folder)::

    latest.json                     the pointer: which snapshot readers open (replaced atomically)
    snapshots/<id>/snapshot.json    what a snapshot is: model fingerprint, dimension, chunker, commit
    snapshots/<id>/chunks.lance     chunk rows with vectors and lexical terms (FTS index built there)
    snapshots/<id>/files.lance      the manifest: path -> content hash

Publishing writes a complete snapshot under a new prefix, then replaces ``latest.json`` (one object
PUT is atomic on S3, GCS and Azure; a rename on a local folder): a reader sees the old snapshot or
the new one, never half of one. Snapshots are immutable; the newest ``keep`` are kept, so a reader that
opened one just before a publish goes on reading it. Ids start with the UTC time and the source
commit, so listing them sorts them by age and names the commit each was built from.

A reader (``SharedWorkspace``) opens the snapshot read-only and keeps a small local *overlay* index
of the files whose content differs from the snapshot's (edited, new). Search = the snapshot's rows of
files unchanged locally + the overlay's rows; files deleted or changed locally are hidden from the
snapshot. A fresh clone thus embeds only its local changes, and even those mostly come from the
snapshot's vectors of the same chunks (a changed file's unchanged functions are not embedded again).

On object storage the snapshot is copied once to the user cache (``<cache>/shared/``): snapshots never
change, so the copy is always right, queries run at local speed, and search keeps working offline
with the newest copy when the storage cannot be reached. A folder location is read in place.

Known approximation: BM25 scores of the snapshot and of the (small) overlay come from two full-text
indexes with their own term statistics; the two lexical lists are merged by score.

Credentials come from the standard environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_REGION``, ``AWS_ENDPOINT_URL`` for S3-compatible servers;
``GOOGLE_APPLICATION_CREDENTIALS``; ``AZURE_STORAGE_ACCOUNT_NAME``/``AZURE_STORAGE_ACCOUNT_KEY``).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import EngineConfig
from .errors import (
    ConfigError,
    SharedIndexError,
    SharedIndexMismatchError,
    SharedIndexNotFoundError,
    SourceFileError,
)
from .files import SourceFile, read_source
from .indexer import Indexer, ProgressCallback
from .models.base import Embedder, ModelInfo
from .records import IndexStats, text_hash
from .search import Searcher
from .store import (
    _RESULT_COLUMNS,
    CHUNKS,
    FILES,
    FTS_COLUMN,
    SCHEMA_VERSION,
    ChunkStore,
    fts_config,
    ivf_config,
    ivf_partition_rows,
    nearest,
    sql_in,
)
from .workspace import Workspace

if TYPE_CHECKING:
    import pyarrow.fs as pafs
    from lancedb.db import DBConnection

log = logging.getLogger(__name__)

POINTER = "latest.json"
SNAPSHOTS = "snapshots"
SNAPSHOT_META = "snapshot.json"
DEFAULT_KEEP = 5
OVERLAY_DIR = "shared-overlay"
STATE_FILE = "shared-state.json"


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """What a published snapshot is; ``latest.json`` and ``snapshot.json`` hold one."""

    id: str
    published_at: str  # ISO 8601 UTC
    commit: str | None  # `git rev-parse HEAD` of the published workspace
    dirty: bool  # the working tree had uncommitted changes
    model: str
    fingerprint: str
    dimension: int
    chunker: int
    schema: int
    files: int
    chunks: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SnapshotInfo:
        known: dict[str, Any] = {f: data.get(f) for f in cls.__dataclass_fields__}
        return cls(**known)

    def describe(self) -> str:
        commit = f"commit {self.commit[:12]}{' (dirty)' if self.dirty else ''}" if self.commit else "no git commit"
        return f"snapshot {self.id} ({commit}, {self.files} files, {self.chunks} chunks, model {self.model})"


@dataclass(slots=True)
class PublishResult:
    info: SnapshotInfo
    uri: str
    seconds: float
    removed_snapshots: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- the location


def _storage_options(uri: str) -> dict[str, str]:
    """LanceDB ``storage_options`` for ``uri`` from the standard environment variables."""
    if not uri.startswith("s3://"):
        return {}  # gs:// and az:// read their own standard variables inside LanceDB
    env = os.environ
    options: dict[str, str] = {}
    for key, names in (
        ("aws_access_key_id", ("AWS_ACCESS_KEY_ID",)),
        ("aws_secret_access_key", ("AWS_SECRET_ACCESS_KEY",)),
        ("aws_session_token", ("AWS_SESSION_TOKEN",)),
        ("region", ("AWS_REGION", "AWS_DEFAULT_REGION")),
        ("aws_endpoint", ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT")),
    ):
        value = next((env[n] for n in names if env.get(n)), None)
        if value:
            options[key] = value
    if options.get("aws_endpoint", "").startswith("http://"):
        options["allow_http"] = "true"
    return options


class SharedLocation:
    """The shared index's root: small JSON objects through pyarrow's filesystems, tables through LanceDB."""

    def __init__(self, uri: str) -> None:
        uri = uri.strip().rstrip("/")
        if not uri:
            raise ConfigError("the shared index location is empty")
        if "://" not in uri:  # a folder: absolute, so LanceDB and pyarrow agree on it
            uri = str(Path(uri).expanduser().resolve())
        elif uri.startswith("file://"):
            uri = uri.removeprefix("file://")
        self.uri = uri
        self.storage_options = _storage_options(uri)
        self._fs, self._root = self._filesystem(uri)

    @property
    def is_local(self) -> bool:
        return "://" not in self.uri

    def _filesystem(self, uri: str) -> tuple[pafs.FileSystem, str]:
        import pyarrow.fs as pafs

        if self.is_local:
            return pafs.LocalFileSystem(), uri
        scheme, rest = uri.split("://", 1)
        try:
            if scheme == "s3":
                opts = self.storage_options
                kwargs: dict[str, Any] = {
                    "access_key": opts.get("aws_access_key_id"),
                    "secret_key": opts.get("aws_secret_access_key"),
                    "session_token": opts.get("aws_session_token"),
                    "region": opts.get("region"),
                }
                endpoint = opts.get("aws_endpoint")
                if endpoint:
                    scheme_part, _, host = endpoint.partition("://")
                    kwargs["endpoint_override"] = host or scheme_part
                    kwargs["scheme"] = scheme_part if host else "https"
                return pafs.S3FileSystem(**{k: v for k, v in kwargs.items() if v is not None}), rest
            fs, path = pafs.FileSystem.from_uri(uri)
            return fs, path
        except (ValueError, OSError) as exc:  # pyarrow.lib.ArrowInvalid is a ValueError
            raise SharedIndexError(f"cannot use the shared index location {uri}: {exc}") from exc

    # -- small objects ------------------------------------------------------------------------------

    def read_json(self, rel: str) -> dict[str, Any] | None:
        path = f"{self._root}/{rel}"
        try:
            with self._fs.open_input_stream(path) as stream:
                data = stream.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            if "not found" in str(exc).lower() or "NoSuchKey" in str(exc):
                return None
            raise SharedIndexError(f"cannot read {self.uri}/{rel}: {exc}") from exc
        try:
            parsed = json.loads(data)
        except ValueError as exc:
            raise SharedIndexError(f"{self.uri}/{rel} is not valid JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            raise SharedIndexError(f"{self.uri}/{rel} is not a JSON object")
        return parsed

    def write_json(self, rel: str, data: dict[str, Any]) -> None:
        """One object written whole: a single PUT on object stores, write-then-rename on a folder."""
        payload = json.dumps(data, indent=2).encode("utf-8")
        path = f"{self._root}/{rel}"
        try:
            if self.is_local:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
                with open(tmp, "wb") as handle:
                    handle.write(payload)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, path)
                return
            with self._fs.open_output_stream(path) as stream:
                stream.write(payload)
        except OSError as exc:
            raise SharedIndexError(f"cannot write {self.uri}/{rel}: {exc}") from exc

    def snapshot_ids(self) -> list[str]:
        import pyarrow.fs as pafs

        try:
            infos = self._fs.get_file_info(pafs.FileSelector(f"{self._root}/{SNAPSHOTS}", allow_not_found=True))
        except OSError as exc:
            raise SharedIndexError(f"cannot list {self.uri}/{SNAPSHOTS}: {exc}") from exc
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)

    def delete_snapshot(self, snapshot_id: str) -> None:
        try:
            self._fs.delete_dir(f"{self._root}/{SNAPSHOTS}/{snapshot_id}")
        except OSError as exc:
            log.warning("could not delete old snapshot %s: %s", snapshot_id, exc)

    # -- tables -------------------------------------------------------------------------------------

    def snapshot_uri(self, snapshot_id: str) -> str:
        return f"{self.uri}/{SNAPSHOTS}/{snapshot_id}"

    def connect(self, snapshot_id: str) -> DBConnection:
        import lancedb

        try:
            return lancedb.connect(self.snapshot_uri(snapshot_id), storage_options=self.storage_options or None)
        except (ValueError, OSError) as exc:
            raise SharedIndexError(f"cannot open {self.snapshot_uri(snapshot_id)}: {exc}") from exc

    def latest(self) -> SnapshotInfo:
        pointer = self.read_json(POINTER)
        if pointer is None:
            raise SharedIndexNotFoundError(
                f"no shared index has been published at {self.uri} (no {POINTER}): "
                f"run `semcode index --publish {self.uri}` (in CI, say) first"
            )
        return SnapshotInfo.from_dict(pointer)


# ----------------------------------------------------------------------------- publishing


def git_commit(root: Path) -> tuple[str | None, bool]:
    """(HEAD commit, working tree dirty) of ``root``, or (None, False) outside a git repository."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30, check=False
        )
        if head.returncode != 0:
            return None, False
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return head.stdout.strip() or None, bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, False


def _new_snapshot_id(commit: str | None) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{(commit or 'nogit')[:12]}-{secrets.token_hex(3)}"


def publish(
    store: ChunkStore,
    uri: str,
    *,
    root: Path,
    keep: int = DEFAULT_KEEP,
    vector_index_min_rows: int = 20_000,
) -> PublishResult:
    """Copy the local index of ``root`` to ``uri`` as a new snapshot, then point ``latest`` at it."""
    if keep < 1:
        raise ConfigError("keep must be at least 1 snapshot")
    started = time.perf_counter()
    location = SharedLocation(uri)
    commit, dirty = git_commit(root)
    snapshot_id = _new_snapshot_id(commit)
    import lancedb

    # Held while reading, so the chunks and the manifest copied belong to the same indexing run.
    with store.writer(wait=True):
        local = lancedb.connect(str(store.path / "lance"))  # the store's own tables, read-only here
        chunks_table, files_table = local.open_table(CHUNKS), local.open_table(FILES)
        n_chunks, n_files = chunks_table.count_rows(), files_table.count_rows()
        if n_files == 0:
            raise SharedIndexError(f"the index of {root} is empty: nothing to publish (run `semcode index` first)")
        if store.pending_count():  # placeholder vectors must never reach a team's snapshot
            raise SharedIndexError(
                f"{store.pending_count()} chunks of {root} have no model vector yet (an interrupted index): "
                "run `semcode index` to finish it, then publish"
            )
        target = location.connect(snapshot_id)
        try:
            remote_chunks = target.create_table(CHUNKS, data=chunks_table.to_arrow())
            target.create_table(FILES, data=files_table.to_arrow())
        except (OSError, ValueError, RuntimeError) as exc:
            location.delete_snapshot(snapshot_id)
            raise SharedIndexError(f"cannot write the snapshot to {location.snapshot_uri(snapshot_id)}: {exc}") from exc
    remote_chunks.create_index(FTS_COLUMN, replace=True, config=fts_config())
    if n_chunks >= vector_index_min_rows:
        remote_chunks.create_index("vector", config=ivf_config(ivf_partition_rows(n_chunks)))
    info = SnapshotInfo(
        id=snapshot_id,
        published_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        commit=commit,
        dirty=dirty,
        model=store.model_name,
        fingerprint=store.fingerprint,
        dimension=store.dimension,
        chunker=store.chunker_version,
        schema=SCHEMA_VERSION,
        files=n_files,
        chunks=n_chunks,
    )
    location.write_json(f"{SNAPSHOTS}/{snapshot_id}/{SNAPSHOT_META}", asdict(info))
    location.write_json(POINTER, asdict(info))  # the commit point: readers switch here
    removed = _apply_retention(location, keep, current=snapshot_id)
    log.info("published %s to %s", info.describe(), location.uri)
    return PublishResult(info, location.uri, time.perf_counter() - started, removed)


def _apply_retention(location: SharedLocation, keep: int, *, current: str) -> list[str]:
    """Delete all but the newest ``keep`` snapshots (never the one ``latest`` names)."""
    try:
        pointed = location.latest().id
    except SharedIndexError:
        pointed = current
    ids = location.snapshot_ids()
    doomed = [i for i in ids[: max(0, len(ids) - keep)] if i not in (current, pointed)]
    for snapshot_id in doomed:
        location.delete_snapshot(snapshot_id)
    return doomed


# ----------------------------------------------------------------------------- reading


class Snapshot:
    """One published snapshot, opened read-only.

    ``location`` is where it was published (followed for newer snapshots); the tables are read from
    ``tables``: the same place for a folder, a local mirror for object storage (see ``mirror``).
    """

    def __init__(self, location: SharedLocation, info: SnapshotInfo, *, tables: SharedLocation | None = None) -> None:
        self.location = location
        self.info = info
        self.tables = tables or location
        db = self.tables.connect(info.id)
        try:
            self._chunks = db.open_table(CHUNKS)
            files = db.open_table(FILES).to_arrow().select(["path", "content_hash"])
        except (ValueError, FileNotFoundError, OSError) as exc:
            raise SharedIndexError(
                f"the shared {info.describe()} at {location.uri} cannot be read ({exc}); it may have been removed "
                "by newer publishes: reopen to get the latest"
            ) from exc
        self.manifest: dict[str, str] = dict(
            zip(files["path"].to_pylist(), files["content_hash"].to_pylist(), strict=True)
        )

    @classmethod
    def open_latest(
        cls, uri: str, model: ModelInfo, *, chunker_version: int, mirror_root: Path | None = None
    ) -> Snapshot:
        location = SharedLocation(uri)
        return cls.open(location, model, chunker_version=chunker_version, mirror_root=mirror_root)

    @classmethod
    def open(
        cls,
        location: SharedLocation,
        model: ModelInfo,
        *,
        chunker_version: int,
        mirror_root: Path | None = None,
        info: SnapshotInfo | None = None,
    ) -> Snapshot:
        """The latest snapshot (or ``info``), mirrored under ``mirror_root`` when on object storage."""
        mirror_dir = None if location.is_local or mirror_root is None else mirror_root / _location_key(location.uri)
        if info is None:
            try:
                info = location.latest()
            except SharedIndexNotFoundError:
                raise
            except SharedIndexError as exc:
                cached = _newest_mirrored(mirror_dir) if mirror_dir else None
                if cached is None:
                    raise
                log.warning("%s; searching the copy of %s made earlier", exc, cached.describe())
                info = cached
        check_compatible(info, model, chunker_version=chunker_version, uri=location.uri)
        if mirror_dir is None:
            return cls(location, info)
        mirror(location, info, mirror_dir)
        return cls(location, info, tables=SharedLocation(str(mirror_dir)))

    # -- reads (the ChunkStore read API, with some paths hidden) -------------------------------------

    def vector_search(
        self, vector: np.ndarray, *, limit: int, where: str | None, hidden: Sequence[str]
    ) -> list[dict[str, Any]]:
        query = nearest(self._chunks, vector, limit)
        clause = _and(where, _not_in(hidden))
        if clause:
            query = query.where(clause, prefilter=True)
        return query.select([*_RESULT_COLUMNS, "_distance"]).to_list()

    def text_search(self, terms: str, *, limit: int, where: str | None, hidden: Sequence[str]) -> list[dict[str, Any]]:
        if not terms.strip():
            return []
        query = self._chunks.search(terms, query_type="fts", fts_columns=FTS_COLUMN).limit(limit)
        clause = _and(where, _not_in(hidden))
        if clause:
            query = query.where(clause, prefilter=True)
        try:
            return query.select([*_RESULT_COLUMNS, FTS_COLUMN, "_score"]).to_list()
        except Exception as exc:  # noqa: BLE001 - a snapshot published without rows has no FTS index
            log.debug("full-text search of the snapshot unavailable: %s", exc)
            return []

    def rows(
        self, where: str, *, columns: Sequence[str] | None, limit: int, hidden: Sequence[str]
    ) -> list[dict[str, Any]]:
        query = self._chunks.search().where(_and(where, _not_in(hidden)) or "true").limit(limit)
        return query.select(list(columns or _RESULT_COLUMNS)).to_list()

    def vectors_for(self, paths: Iterable[str]) -> dict[str, np.ndarray]:
        """text hash -> vector of the snapshot's chunks of ``paths`` (to spare re-embedding them)."""
        from .lance_rows import vectors_of

        found: dict[str, np.ndarray] = {}
        wanted = sorted(set(paths) & self.manifest.keys())
        for start in range(0, len(wanted), 200):
            table = (
                self._chunks.search()
                .where(sql_in("path", wanted[start : start + 200]))
                .select(["text_hash", "vector"])
                .limit(None)
                .to_arrow()
            )
            vectors = vectors_of(table)
            for i, key in enumerate(table["text_hash"].to_pylist()):
                found[key] = vectors[i]
        return found

    def count_chunks(self) -> int:
        return self._chunks.count_rows()


def _location_key(uri: str) -> str:
    import hashlib

    readable = "".join(c if c.isalnum() or c in "-_." else "_" for c in uri.split("://", 1)[-1])[-48:]
    return f"{readable}-{hashlib.sha256(uri.encode()).hexdigest()[:12]}"


MIRRORS_KEPT = 3


def mirror(location: SharedLocation, info: SnapshotInfo, mirror_dir: Path) -> Path:
    """Copy a snapshot from object storage to ``mirror_dir`` once (snapshots never change).

    Searching a local copy answers at local speed (a query on S3 costs several round trips) and keeps
    working offline. The copy is made under a temporary name and renamed when complete.
    """
    import shutil

    import pyarrow.fs as pafs

    final = mirror_dir / SNAPSHOTS / info.id
    if (final / SNAPSHOT_META).is_file():
        return final
    tmp = mirror_dir / SNAPSHOTS / f".{info.id}.{os.getpid()}.{threading.get_ident()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    started = time.perf_counter()
    try:
        pafs.copy_files(
            f"{location._root}/{SNAPSHOTS}/{info.id}",
            str(tmp),
            source_filesystem=location._fs,
            destination_filesystem=pafs.LocalFileSystem(),
            use_threads=True,
        )
        if not (tmp / SNAPSHOT_META).is_file():
            raise SharedIndexError(f"the shared {info.describe()} at {location.uri} is incomplete (no {SNAPSHOT_META})")
        try:
            os.replace(tmp, final)
        except OSError:  # another process finished the same copy first
            if not (final / SNAPSHOT_META).is_file():
                raise
    except OSError as exc:
        raise SharedIndexError(f"cannot copy the shared {info.describe()} from {location.uri}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("copied the shared %s in %.1fs", info.describe(), time.perf_counter() - started)
    kept = sorted(p.name for p in (mirror_dir / SNAPSHOTS).iterdir() if not p.name.startswith("."))
    for old in kept[: max(0, len(kept) - MIRRORS_KEPT)]:
        if old != info.id:
            shutil.rmtree(mirror_dir / SNAPSHOTS / old, ignore_errors=True)
    return final


def _newest_mirrored(mirror_dir: Path) -> SnapshotInfo | None:
    """The newest snapshot copied before (for offline use), or None."""
    root = mirror_dir / SNAPSHOTS
    if not root.is_dir():
        return None
    for path in sorted(root.iterdir(), reverse=True):
        meta = path / SNAPSHOT_META
        if not path.name.startswith(".") and meta.is_file():
            try:
                return SnapshotInfo.from_dict(json.loads(meta.read_text()))
            except (OSError, ValueError, TypeError):
                continue
    return None


def check_compatible(info: SnapshotInfo, model: ModelInfo, *, chunker_version: int, uri: str) -> None:
    """Refuse a snapshot whose vectors or chunks this semcode cannot mix with its own, saying why."""
    problems = []
    if info.schema != SCHEMA_VERSION:
        problems.append(f"its index format is {info.schema}, this semcode writes format {SCHEMA_VERSION}")
    if info.fingerprint != model.fingerprint or info.dimension != model.dimension:
        problems.append(
            f"it was embedded with model {info.model!r} (dimension {info.dimension}, fingerprint "
            f"{info.fingerprint[:12]}), this semcode embeds with {model.name!r} (dimension {model.dimension}, "
            f"fingerprint {model.fingerprint[:12]}): vectors of two models cannot be compared"
        )
    if info.chunker != chunker_version:
        problems.append(f"it was chunked by chunker version {info.chunker}, this semcode uses {chunker_version}")
    if problems:
        raise SharedIndexMismatchError(
            f"cannot use the shared {info.describe()} at {uri}: "
            + "; ".join(problems)
            + ". Use the same model settings (embeddingsUrl or model) and semcode version as the publisher, "
            "or publish a new snapshot with yours"
        )


def _not_in(paths: Sequence[str]) -> str | None:
    return f"NOT ({sql_in('path', paths)})" if paths else None


def _and(*clauses: str | None) -> str | None:
    present = [f"({c})" for c in clauses if c]
    return " AND ".join(present) or None


# ----------------------------------------------------------------------------- the overlay


@dataclass(slots=True)
class _State:
    """Which local files the snapshot serves; persisted so a new process searches without re-hashing."""

    snapshot: str = ""
    served: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # path -> (size, mtime_ns, hash)
    hidden: set[str] = field(default_factory=set)  # snapshot paths not to show (changed, deleted, excluded)

    @classmethod
    def load(cls, path: Path, snapshot_id: str) -> _State:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls(snapshot=snapshot_id)
        if data.get("snapshot") != snapshot_id:
            return cls(snapshot=snapshot_id)
        served = {p: (int(v[0]), int(v[1]), str(v[2])) for p, v in data.get("served", {}).items()}
        return cls(snapshot_id, served, set(data.get("hidden", [])))

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"snapshot": self.snapshot, "served": self.served, "hidden": sorted(self.hidden)}))
        os.replace(tmp, path)


class OverlayIndexer(Indexer):
    """Indexes only the files the snapshot does not serve, seeding vectors from the snapshot."""

    def __init__(self, *args: Any, snapshot: Snapshot, state: _State, state_path: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.snapshot = snapshot
        self.state = state
        self.state_path = state_path

    def _served_hash(self, file: SourceFile) -> str | None:
        """The file's content hash when the snapshot has exactly this content, else None."""
        wanted = self.snapshot.manifest.get(file.path)
        if wanted is None:
            return None
        known = self.state.served.get(file.path)
        if known and known[0] == file.size and known[1] == file.mtime_ns:
            return known[2] if known[2] == wanted else None
        try:
            digest = text_hash(read_source(file, self.config.max_file_size))
        except (SourceFileError, OSError):
            return None
        return digest if digest == wanted else None

    def _classify(self, files: Sequence[SourceFile], *, everything: bool) -> list[SourceFile]:
        """Update the served/hidden state for ``files``; return those the overlay must index."""
        local: list[SourceFile] = []
        for file in files:
            digest = self._served_hash(file)
            if digest is not None:
                self.state.served[file.path] = (file.size, file.mtime_ns, digest)
                self.state.hidden.discard(file.path)
            else:
                self.state.served.pop(file.path, None)
                local.append(file)
                if file.path in self.snapshot.manifest:
                    self.state.hidden.add(file.path)
        if everything:  # snapshot files not in the walk: deleted or excluded locally
            present = {f.path for f in files}
            self.state.hidden |= {p for p in self.snapshot.manifest if p not in present}
            self.state.served = {p: v for p, v in self.state.served.items() if p in present}
        return local

    def _seed(self, files: Sequence[SourceFile]) -> None:
        for key, vector in self.snapshot.vectors_for(f.path for f in files).items():
            self.cache.put(key, vector)

    def _prefetch(self) -> None:
        """Nothing to read ahead: the overlay compares against its own manifest and the snapshot's."""

    def _index_walked(
        self,
        files: list[SourceFile],
        stats: IndexStats,
        progress: ProgressCallback | None,
        cancel: threading.Event | None,
        *,
        embed: bool,
    ) -> None:
        local = self._classify(files, everything=True)
        manifest = self.store.manifest()
        wanted = {f.path for f in local}
        removed = [p for p in manifest if p not in wanted]  # deleted, or back to the snapshot's content
        self._seed(local)
        self._run(local, removed, manifest, stats, progress, cancel, embed=embed)
        stats.files_seen = len(files)
        stats.files_unchanged += len(files) - len(local)
        stats.chunks_total += self.snapshot.count_chunks()  # an estimate: hidden snapshot rows included
        self.state.save(self.state_path)

    def _index_listed(
        self,
        wanted: list[str],
        files: list[SourceFile],
        gone: list[str],
        stats: IndexStats,
        progress: ProgressCallback | None,
        cancel: threading.Event | None,
    ) -> None:
        manifest = self.store.manifest()
        gone = [
            p
            for rel in gone
            for p in {*manifest, *self.snapshot.manifest}
            if p == rel or p.startswith(rel.rstrip("/") + "/")
        ]
        local = self._classify(files, everything=False)
        for path in gone:
            self.state.served.pop(path, None)
            if path in self.snapshot.manifest:
                self.state.hidden.add(path)
        kept = {f.path for f in local}
        removed = [p for p in manifest if (p in gone or p in {f.path for f in files}) and p not in kept]
        self._seed(local)
        self._run(local, removed, manifest, stats, progress, cancel, force_read=True)
        self.state.save(self.state_path)


class OverlayStore:
    """The read API ``Searcher`` uses, over the snapshot (minus hidden files) and the local overlay."""

    def __init__(self, local: ChunkStore, snapshot: Snapshot, state: _State) -> None:
        self.local = local
        self.snapshot = snapshot
        self.state = state

    def _hidden(self) -> list[str]:
        # Files the overlay holds always win over the snapshot's rows of the same path.
        return sorted(self.state.hidden | set(self.local.manifest()))

    def vector_search(self, vector: np.ndarray, *, limit: int, where: str | None = None) -> list[dict[str, Any]]:
        rows = self.snapshot.vector_search(vector, limit=limit, where=where, hidden=self._hidden())
        rows += self.local.vector_search(vector, limit=limit, where=where)
        return sorted(rows, key=lambda r: r["_distance"])[:limit]

    def text_search(self, terms: str, *, limit: int, where: str | None = None) -> list[dict[str, Any]]:
        rows = self.snapshot.text_search(terms, limit=limit, where=where, hidden=self._hidden())
        rows += self.local.text_search(terms, limit=limit, where=where)
        return sorted(rows, key=lambda r: -r["_score"])[:limit]

    def rows(self, where: str, *, columns: Sequence[str] | None = None, limit: int = 10_000) -> list[dict[str, Any]]:
        local = self.local.rows(where, columns=columns, limit=limit)
        rest = self.snapshot.rows(where, columns=columns, limit=limit, hidden=self._hidden())
        return (local + rest)[:limit]

    def count_files(self) -> int:
        return len(self.snapshot.manifest.keys() - self.state.hidden) + self.local.count_files()

    def count_chunks(self) -> int:
        return self.snapshot.count_chunks() + self.local.count_chunks()


# ----------------------------------------------------------------------------- the workspace


class SharedWorkspace(Workspace):
    """A ``Workspace`` searching a published snapshot plus a local overlay of its own changes."""

    def __init__(self, root: Path, config: EngineConfig | None = None, *, embedder: Embedder | None = None) -> None:
        super().__init__(root, config, embedder=embedder)
        if not self.config.shared_index:
            raise ConfigError("SharedWorkspace needs the shared_index setting")
        self._snapshot: Snapshot | None = None
        self._overlay: ChunkStore | None = None
        self._state: _State | None = None
        self._shared_lock = threading.Lock()

    @property
    def index_path(self) -> Path:
        """The local overlay is this workspace's own index (its write lock included)."""
        return super().index_path / OVERLAY_DIR

    @property
    def overlay_path(self) -> Path:
        return self.index_path

    def open(self) -> Workspace:
        """Open the snapshot (refused ones raise here) and the local overlay."""
        self._store = self.store
        return self

    @property
    def mirror_root(self) -> Path:
        """Local copies of snapshots from object storage, shared by every clone on this machine."""
        from .config import cache_root

        return cache_root() / "shared"

    @property
    def snapshot(self) -> Snapshot:
        from .chunking import CHUNKER_VERSION

        with self._shared_lock:
            if self._snapshot is None:
                self._snapshot = Snapshot.open_latest(
                    self.config.shared_index or "",
                    self.embedder.info,
                    chunker_version=CHUNKER_VERSION,
                    mirror_root=self.mirror_root,
                )
                log.info("searching the shared %s", self._snapshot.info.describe())
            return self._snapshot

    @property
    def store(self) -> ChunkStore:  # the local overlay: what this process writes
        snapshot = self.snapshot  # first: a refused snapshot must not create an overlay
        with self._shared_lock:
            if self._overlay is None:
                info = self.embedder.info
                self._overlay = ChunkStore(
                    self.overlay_path,
                    dimension=info.dimension,
                    fingerprint=info.fingerprint,
                    model_name=info.name,
                    chunker_version=snapshot.info.chunker,
                )
                self._state = _State.load(self.overlay_path / STATE_FILE, snapshot.info.id)
            return self._overlay

    @property
    def shared_state(self) -> _State:
        self.store  # noqa: B018 - opens the overlay and loads the state
        assert self._state is not None
        return self._state

    @property
    def has_state(self) -> bool:
        """True once the workspace was compared with this snapshot (by an index run, in any process)."""
        return bool(self.shared_state.served or self.shared_state.hidden or self.store.count_files())

    @property
    def searcher(self) -> Searcher:
        overlay = OverlayStore(self.store, self.snapshot, self.shared_state)
        return Searcher(overlay, self.embedder, hybrid=self.config.hybrid, buffers=self.buffers)

    def indexed_hash(self, rel_path: str) -> str | None:
        """The local index's version of the file, else the snapshot's (unless the file is hidden from it)."""
        local = super().indexed_hash(rel_path)
        if local is not None or rel_path in self.shared_state.hidden:
            return local
        return self.snapshot.manifest.get(rel_path)

    def _indexer(self) -> Indexer:
        # With the workspace's save-ahead, as a local folder's: a save's preparation during its debounce
        # (prepare_update, inherited) was made and then redone by an indexer that never took it.
        return self._make_indexer(
            OverlayIndexer, snapshot=self.snapshot, state=self.shared_state, state_path=self.overlay_path / STATE_FILE
        )

    def index(self, *args: Any, **kwargs: Any) -> IndexStats:
        """Index the overlay, after switching to a newer snapshot if one was published meanwhile."""
        self.refresh()
        return super().index(*args, **kwargs)

    def refresh(self) -> bool:
        """Follow ``latest`` to a newer snapshot (one small read); True when it switched."""
        from .chunking import CHUNKER_VERSION

        with self._shared_lock:
            current = self._snapshot
        if current is None:
            return False
        try:
            latest = current.location.latest()
        except SharedIndexError as exc:  # offline, say: keep searching the snapshot at hand
            log.warning("cannot check %s for a newer snapshot: %s", current.location.uri, exc)
            return False
        if latest.id == current.info.id:
            return False
        snapshot = Snapshot.open(
            current.location,
            self.embedder.info,
            chunker_version=CHUNKER_VERSION,
            mirror_root=self.mirror_root,
            info=latest,
        )
        with self._shared_lock:
            self._snapshot = snapshot
            if self._overlay is not None:
                self._state = _State.load(self.overlay_path / STATE_FILE, latest.id)
        log.info("switched to the shared %s", latest.describe())
        return True

    def status(self) -> dict[str, Any]:
        status = super().status()
        snap = self.snapshot
        status |= {
            "sharedIndex": snap.location.uri,
            "sharedSnapshot": snap.info.id,
            "sharedCommit": snap.info.commit,
            "files": OverlayStore(self.store, snap, self.shared_state).count_files(),
            "chunks": snap.count_chunks() + self.store.count_chunks(),
            "overlayFiles": self.store.count_files(),
        }
        return status


def open_workspace(root: Path, config: EngineConfig | None = None, *, embedder: Embedder | None = None) -> Workspace:
    """The workspace the config asks for: on a shared snapshot when ``shared_index`` is set."""
    config = config or EngineConfig()
    if config.shared_index:
        return SharedWorkspace(root, config, embedder=embedder)
    return Workspace(root, config, embedder=embedder)


__all__ = [
    "OverlayStore",
    "PublishResult",
    "SharedLocation",
    "SharedWorkspace",
    "Snapshot",
    "SnapshotInfo",
    "open_workspace",
    "publish",
]
