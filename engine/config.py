"""Engine settings: one validated dataclass, built from a plain dict (CLI flags, LSP settings, MCP)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError

DEFAULT_EXCLUDES: tuple[str, ...] = (
    # vendored, generated and tool directories
    ".git/",
    ".hg/",
    ".svn/",
    "node_modules/",
    "bower_components/",
    "vendor/",
    "third_party/",
    "__pycache__/",
    ".venv/",
    "venv/",
    ".tox/",
    ".nox/",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
    "dist/",
    "build/",
    "target/",
    "out/",
    ".next/",
    ".nuxt/",
    "coverage/",
    ".idea/",
    ".vscode-test/",
    "*.egg-info/",
    "site-packages/",
    # generated and minified files
    "*.min.js",
    "*.min.css",
    "*.map",
    "*.lock",
    "package-lock.json",
    "*.pb.go",
    "*_pb2.py",
    # secrets: never read into an index
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "id_rsa*",
    "id_ed25519*",
    "*.keystore",
    ".npmrc",
    ".pypirc",
    ".netrc",
    "credentials*",
    "secrets.*",
    ".yarnrc.yml",  # npmAuthToken
    "kubeconfig*",
    "*.kubeconfig",
    "*.kubeconfig.*",
    ".kube/",
    ".aws/",
    "**/.docker/config.json",
    ".git-credentials",
    "deploy_key*",
    "*_rsa",
    "*_dsa",
    "*_ecdsa",
    "*_ed25519",
    "*.ovpn",
    ".htpasswd",
    # A virtualenv of any name is recognised by its pyvenv.cfg (see files.walk).
)


def cache_root() -> Path:
    """Where semcode keeps models and indexes: ``$SEMCODE_CACHE_DIR`` or the XDG user cache dir."""
    override = os.environ.get("SEMCODE_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("semcode", appauthor=False))


def workspace_key(root: Path) -> str:
    """A directory name for a workspace: readable prefix plus a hash of its absolute path."""
    resolved = str(root.resolve())
    digest = hashlib.sha256(resolved.encode()).hexdigest()[:16]
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in root.resolve().name)[:40]
    return f"{name or 'root'}-{digest}"


MODEL_FORMATS: tuple[str, ...] = ("auto", "as-is", "bf16")
MODEL_FORMAT_ENV = "SEMCODE_MODEL_FORMAT"

# Vectors kept by an index's persistent embedding cache (~1.6 KB each at 384 dimensions, ~300 MB in
# all): enough for two branches of a repository of ~80K chunks; the least recently used go first.
DEFAULT_CACHE_VECTORS = 200_000


@dataclass(frozen=True, slots=True)
class EngineConfig:
    model_path: str | None = None  # a GGUF embedding model; None = the bundled all-MiniLM-L6-v2
    # The weights' format llama.cpp runs (engine/models/formats.py): "auto" (a BF16 copy of the file where
    # the loaded CPU backend has AVX512_BF16 and the copy is small, the file as it is elsewhere), "as-is"
    # or "bf16". None = $SEMCODE_MODEL_FORMAT, else "auto".
    model_format: str | None = None
    query_prefix: str | None = None  # None = the model's known prefix (see models.registry)
    document_prefix: str | None = None
    threads: int = 0  # 0 = physical cores
    batch_size: int = 32
    include: tuple[str, ...] = ()  # gitignore-style patterns; empty = every file
    exclude: tuple[str, ...] = ()  # added to DEFAULT_EXCLUDES, .gitignore and .semcodeignore
    max_file_size: int = 1_000_000  # bytes; larger files are skipped
    hybrid: bool = True  # fuse full-text (BM25) results with vector results
    index_dir: str | None = None  # parent folder of the indexes; None = <cache>/indexes
    vector_index_min_rows: int = 20_000  # build an IVF index once the table has this many rows
    memory_limit_mb: int = 0  # 0 = adapt to system memory pressure only
    embedding_cache_vectors: int = DEFAULT_CACHE_VECTORS  # bound of the persistent embedding cache
    # An OpenAI-compatible embedding server (llama-server --embedding, vLLM, TEI, ...) instead of the
    # in-process model; its API key comes from $SEMCODE_EMBEDDINGS_API_KEY, never from settings.
    embeddings_url: str | None = None
    embeddings_model: str | None = None  # the "model" sent to the server; None = what it serves
    embeddings_max_tokens: int = 0  # the server model's input limit; 0 = ask the server, else 512
    # A snapshot published with `semcode index --publish URI` (s3://, gs://, az:// or a folder): searched
    # read-only, with a local index only for files whose content differs from the snapshot's.
    shared_index: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> EngineConfig:
        """Build from user settings. Unknown keys and bad values raise ConfigError naming them."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ConfigError(f"settings must be an object, got {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        aliases = {
            "model": "model_path",
            "modelPath": "model_path",
            "modelFormat": "model_format",
            "maxFileSize": "max_file_size",
            "queryPrefix": "query_prefix",
            "documentPrefix": "document_prefix",
            "batchSize": "batch_size",
            "indexDir": "index_dir",
            "vectorIndexMinRows": "vector_index_min_rows",
            "memoryLimitMb": "memory_limit_mb",
            "embeddingCacheVectors": "embedding_cache_vectors",
            "embeddingsUrl": "embeddings_url",
            "embeddingsModel": "embeddings_model",
            "embeddingsMaxTokens": "embeddings_max_tokens",
            "sharedIndex": "shared_index",
        }
        values: dict[str, Any] = {}
        for key, value in data.items():
            name = aliases.get(key, key)
            if name not in known:
                raise ConfigError(f"unknown setting '{key}' (known: {', '.join(sorted(known))})")
            values[name] = value
        config = cls()
        try:
            config = replace(config, **{k: _coerce(k, v) for k, v in values.items()})
        except TypeError as exc:  # pragma: no cover - replace() rejects only unknown names
            raise ConfigError(str(exc)) from exc
        config.validate()
        return config

    def validate(self) -> None:
        if self.model_format is not None and self.model_format not in MODEL_FORMATS:
            raise ConfigError(f"model_format must be one of {', '.join(MODEL_FORMATS)}, got {self.model_format!r}")
        if self.threads < 0:
            raise ConfigError(f"threads must be >= 0, got {self.threads}")
        if not 1 <= self.batch_size <= 4096:
            raise ConfigError(f"batch_size must be between 1 and 4096, got {self.batch_size}")
        if self.max_file_size < 1:
            raise ConfigError(f"max_file_size must be a positive number of bytes, got {self.max_file_size}")
        if self.vector_index_min_rows < 256:
            raise ConfigError("vector_index_min_rows must be at least 256")
        if self.memory_limit_mb < 0:
            raise ConfigError("memory_limit_mb must be >= 0")
        if self.embedding_cache_vectors < 1:
            raise ConfigError(f"embedding_cache_vectors must be >= 1, got {self.embedding_cache_vectors}")
        if self.embeddings_url is not None and not self.embeddings_url.startswith(("http://", "https://")):
            raise ConfigError(f"embeddings_url must be an http:// or https:// URL, got {self.embeddings_url!r}")
        if self.embeddings_max_tokens < 0:
            raise ConfigError("embeddings_max_tokens must be >= 0")
        if self.shared_index is not None and "://" in self.shared_index:
            scheme = self.shared_index.split("://", 1)[0].lower()
            if scheme not in ("s3", "s3+ddb", "gs", "az", "abfs", "file"):
                raise ConfigError(
                    f"shared_index must be an s3://, gs://, az:// URI or a folder, got {self.shared_index!r}"
                )

    def index_path(self, workspace: Path, model_key: str | None = None) -> Path:
        """Where the index of ``workspace`` built with the model ``model_key`` lives.

        ``<index_dir or <cache>/indexes>/<workspace key>/<model key>``: an index is bound to one
        workspace folder and one model, so two folders sharing an ``indexDir``, or two processes
        using different models on one folder, never write (or wipe) each other's index. Without
        ``model_key`` this is the folder holding the workspace's indexes of every model.
        """
        base = Path(self.index_dir).expanduser() if self.index_dir else cache_root() / "indexes"
        folder = base / workspace_key(workspace)
        if model_key is None:
            return folder
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_key)[:64].strip(".")
        if not safe:
            raise ConfigError(f"invalid model key for an index folder: {model_key!r}")
        return folder / safe

    def effective_model_format(self) -> str:
        """``model_format``, else ``$SEMCODE_MODEL_FORMAT``, else "auto"; a bad value raises ConfigError."""
        if self.model_format is not None:
            return self.model_format
        value = os.environ.get(MODEL_FORMAT_ENV, "").strip().lower()
        if not value:
            return "auto"
        if value not in MODEL_FORMATS:
            raise ConfigError(f"${MODEL_FORMAT_ENV} must be one of {', '.join(MODEL_FORMATS)}, got {value!r}")
        return value

    def effective_threads(self) -> int:
        if self.threads:
            return self.threads
        try:
            import psutil

            return max(1, psutil.cpu_count(logical=False) or os.cpu_count() or 1)
        except ImportError:  # pragma: no cover
            return max(1, os.cpu_count() or 1)


_TYPES: dict[str, type | tuple[type, ...]] = {
    "model_path": (str, type(None)),
    "model_format": (str, type(None)),
    "query_prefix": (str, type(None)),
    "document_prefix": (str, type(None)),
    "threads": int,
    "batch_size": int,
    "max_file_size": int,
    "hybrid": bool,
    "index_dir": (str, type(None)),
    "vector_index_min_rows": int,
    "memory_limit_mb": int,
    "embedding_cache_vectors": int,
    "embeddings_url": (str, type(None)),
    "embeddings_model": (str, type(None)),
    "embeddings_max_tokens": int,
    "shared_index": (str, type(None)),
}


def _coerce(name: str, value: Any) -> Any:
    if name in ("include", "exclude"):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{name} must be a list of glob patterns")
        return tuple(value)
    expected = _TYPES[name]
    if (expected is int and isinstance(value, bool)) or not isinstance(value, expected):
        want = (
            expected.__name__
            if isinstance(expected, type)
            else " or ".join("null" if t is type(None) else t.__name__ for t in expected)
        )
        raise ConfigError(f"setting '{name}' must be {want}, got {value!r}")
    if name == "model_format" and isinstance(value, str):
        return value.strip().lower() or None
    if name in ("model_path", "embeddings_url", "embeddings_model", "shared_index") and value == "":
        return None
    return value
