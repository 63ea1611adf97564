"""Precise exceptions raised by the engine.

Every error carries a message meant for a human: what went wrong, which file, and the fix.
Callers (CLI, language server, MCP server) show ``str(err)`` as is.
"""

from __future__ import annotations


class SemcodeError(Exception):
    """Base class of every expected semcode failure (never a bug)."""


class ConfigError(SemcodeError):
    """A setting has an invalid value."""


class ModelError(SemcodeError):
    """The embedding model cannot be used."""


class ModelNotFoundError(ModelError):
    """The configured model file does not exist."""


class NotGGUFError(ModelError):
    """The file is not a GGUF file (wrong magic)."""


class TruncatedModelError(ModelError):
    """The GGUF file is shorter than its header says (interrupted download or copy)."""


class NotEmbeddingModelError(ModelError):
    """The GGUF file is a model that cannot produce embeddings (a generative LLM, say)."""


class ModelConversionError(ModelError):
    """The default model could not be converted to GGUF."""


class ModelWorkerError(ModelError):
    """The process running the embedding model died or stopped answering (its cause is in the message)."""


class DependencyMissingError(SemcodeError):
    """An optional heavy dependency is not installed."""


class StoreError(SemcodeError):
    """The on-disk index cannot be read or written."""


class IndexLockedError(StoreError):
    """Another process is writing the same index."""


class MaintenancePreempted(StoreError):
    """A save came first: the index maintenance in progress was stopped before its end (engine/maintenance.py).

    Nothing is lost: the maintenance child was killed, which LanceDB's atomic commits make as safe as a
    crash at that instant; the table is at the version before the step or after it, and the compaction
    stays due.
    """


class IndexCancelledError(SemcodeError):
    """Indexing was cancelled by the caller."""


class SourceFileError(SemcodeError):
    """A source file cannot be indexed (binary, too large, undecodable, unreadable)."""


def missing_dependency(module: str, package: str) -> DependencyMissingError:
    return DependencyMissingError(
        f"the Python module '{module}' is not installed: run `pip install {package}` "
        "(or `pip install semcode`, which brings every dependency)"
    )


class EmbeddingServerError(ModelError):
    """The remote embedding server (``embeddingsUrl``) cannot be used."""


class EmbeddingServerUnavailableError(EmbeddingServerError):
    """The embedding server cannot be reached (down, refusing connections, timing out)."""


class EmbeddingServerResponseError(EmbeddingServerError):
    """The embedding server answered, but not with embeddings (HTTP error, wrong key, bad JSON)."""


class EmbeddingModelChangedError(EmbeddingServerError):
    """The embedding server now serves another model than the one this index was built with."""


class EmbeddingDimensionError(EmbeddingModelChangedError):
    """The embedding server answers vectors of another dimension than the index holds."""


class SharedIndexError(StoreError):
    """A shared index on object storage cannot be published or opened."""


class SharedIndexNotFoundError(SharedIndexError):
    """No snapshot has been published at the shared index location."""


class SharedIndexMismatchError(SharedIndexError):
    """The shared snapshot was built with another model, dimension or chunker than this semcode uses."""
