"""``StaticEmbedder``: a static token-embedding tier distilled from the GGUF model itself (Model2Vec-style).

Every vocabulary token is run once through the transformer (``[prefix specials] token [suffix specials]``,
pooled the way the file says), the table is centred and reduced by PCA, and each row is weighted by a
Zipf/SIF weight of its rank (ids approximate frequency rank in WordPiece, BPE and unigram vocabularies).
A chunk's vector is then the weighted mean of its tokens' rows: no attention, no context limit, tens of
thousands of chunks per second on one core. It is much weaker than the transformer on its own and is
meant as the first dense tier (searchable at once) and as an extra ranked list in fusion.

The table depends only on the model file and the distillation settings, so it is cached beside the
converted models (``<cache>/models/static/<key>.npz``, written atomically) and loaded in milliseconds.

A huge vocabulary (100K+ tokens of a large model) would take long to distill whole, so at most
``max_tokens`` ids (the lowest, i.e. the most frequent) are distilled up front; when the transformer is
at hand (``StaticEmbedder(..., distiller=...)``) any other token met later is distilled on first sight
and kept. A token's row is a pure function of the model and the token, and the PCA basis is fixed by the
first distillation, so rows distilled later agree with the ones distilled up front.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import tempfile
import threading
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelError
from .base import Embedder, ModelInfo
from .gguf_file import GGUFInfo, inspect_gguf

if TYPE_CHECKING:
    from .llama import LlamaEmbedder

log = logging.getLogger(__name__)

STATIC_VERSION = 1  # bump when the table's recipe changes: the cache key and the fingerprint follow
DEFAULT_PCA_DIMS = 256  # Model2Vec's default; capped at the model's own dimension
DEFAULT_SIF = 1e-4  # SIF coefficient a / (a + p(rank)), with p a Zipf distribution over the ids
DEFAULT_MAX_TOKENS = 65_536  # ids distilled up front; MiniLM's 30,522 take ~20 s on 2 cores

# llama_token_attr bits (llama.h): tokens that never carry meaning get no row and no weight.
_ATTR_UNKNOWN, _ATTR_UNUSED, _ATTR_CONTROL = 1 << 0, 1 << 1, 1 << 3


@dataclass(frozen=True, slots=True)
class StaticSettings:
    pca_dims: int = DEFAULT_PCA_DIMS  # 0 = keep the model's dimension (the table is still centred)
    sif: float = DEFAULT_SIF  # 0 = uniform weights
    max_tokens: int = DEFAULT_MAX_TOKENS

    def key(self) -> str:
        return f"v{STATIC_VERSION}-pca{self.pca_dims}-sif{self.sif:g}-n{self.max_tokens}"


@dataclass(slots=True)
class StaticTable:
    """Rows of weighted, reduced token vectors; ``known`` marks the ids distilled so far."""

    rows: np.ndarray  # (n_vocab, dim) float32, already multiplied by the token weight
    known: np.ndarray  # (n_vocab,) bool
    mean: np.ndarray  # (model_dim,) centring of raw token vectors (fixed by the first distillation)
    basis: np.ndarray  # (model_dim, dim) PCA projection (identity-like when pca_dims = 0)
    weights: np.ndarray  # (n_vocab,) float32
    source_fingerprint: str
    settings_key: str

    @property
    def dimension(self) -> int:
        return int(self.rows.shape[1])

    def save(self, path: Path) -> None:
        """Atomic write: a temp file in the same directory, fsync, then os.replace."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(
                    fh,
                    rows=self.rows,
                    known=self.known,
                    mean=self.mean,
                    basis=self.basis,
                    weights=self.weights,
                    source_fingerprint=np.array(self.source_fingerprint),
                    settings_key=np.array(self.settings_key),
                )
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise

    @classmethod
    def load(cls, path: Path, *, source_fingerprint: str, settings_key: str) -> StaticTable | None:
        """The cached table, or None when it is missing, unreadable or made from something else."""
        try:
            with np.load(path, allow_pickle=False) as data:
                table = cls(
                    rows=np.ascontiguousarray(data["rows"], dtype=np.float32),
                    known=np.asarray(data["known"], dtype=bool),
                    mean=np.asarray(data["mean"], dtype=np.float32),
                    basis=np.asarray(data["basis"], dtype=np.float32),
                    weights=np.asarray(data["weights"], dtype=np.float32),
                    source_fingerprint=str(data["source_fingerprint"]),
                    settings_key=str(data["settings_key"]),
                )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            log.warning("the cached static table %s is unusable (%s); distilling it again", path, exc)
            return None
        if table.source_fingerprint != source_fingerprint or table.settings_key != settings_key:
            return None
        if table.rows.shape[0] != table.known.shape[0] or table.basis.shape[1] != table.rows.shape[1]:
            return None
        return table


# --------------------------------------------------------------------------------------------- tokenizer


class GGUFTokenizer:
    """The model's own tokenizer: llama.cpp with only the vocabulary loaded (no weights, ~tens of ms).

    Each thread gets its own output buffer; a short lock keeps ``close`` from freeing the vocabulary
    under a running ``llama_tokenize``.
    """

    def __init__(self, model_path: str | Path) -> None:
        from .llama import _import_llama_cpp, quiet_llama_logs

        self._llama_cpp = llama_cpp = _import_llama_cpp()
        quiet_llama_logs()
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        with contextlib.redirect_stderr(io.StringIO()):
            model = llama_cpp.llama_model_load_from_file(str(model_path).encode("utf-8"), params)
        if not model:
            raise ModelError(f"llama.cpp could not read the vocabulary of {model_path}")
        self._model = model
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
        self._tokenize = llama_cpp.llama_tokenize
        self._local = threading.local()
        self._closed = False
        self._lock = threading.RLock()  # close() against tokenizing

    def _buffer(self, n: int) -> Any:
        buf = getattr(self._local, "buf", None)
        if buf is None or len(buf) < n:
            buf = (self._llama_cpp.llama_token * max(n, 4096))()
            self._local.buf = buf
        return buf

    def ids(self, text: str, *, add_special: bool = True) -> np.ndarray:
        """Token ids of ``text`` as an int32 array."""
        data = text.encode("utf-8", errors="replace")
        buf = self._buffer(len(data) + 8)  # a token covers at least one byte, plus specials
        with self._lock:  # the vocab is freed by close(): tokenizing after that crashes the process
            self._check_open()
            n = self._tokenize(self._vocab, data, len(data), buf, len(buf), add_special, False)
            if n < 0:  # cannot happen with len(data) + 8 slots, but never read past the buffer
                buf = self._buffer(-n)
                n = self._tokenize(self._vocab, data, len(data), buf, len(buf), add_special, False)
        ids: np.ndarray = np.frombuffer(buf, dtype=np.int32, count=n).copy()
        return ids

    def count(self, text: str) -> int:
        data = text.encode("utf-8", errors="replace")
        with self._lock:
            self._check_open()
            return abs(int(self._tokenize(self._vocab, data, len(data), None, 0, True, False)))

    def _check_open(self) -> None:
        if self._closed:
            raise ModelError("the static tokenizer was closed")

    def attributes(self) -> np.ndarray:
        get = self._llama_cpp.llama_vocab_get_attr
        return np.fromiter((get(self._vocab, i) for i in range(self.n_vocab)), dtype=np.int64, count=self.n_vocab)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._llama_cpp.llama_model_free(self._model)


# --------------------------------------------------------------------------------------------- distillation


def _special_frame(tokenizer: GGUFTokenizer) -> tuple[list[int], list[int]]:
    """The special tokens the model puts before and after a text ([CLS] ... [SEP], <s> ... </s>, ...)."""
    for probe in ("a", "x", "the"):
        bare = tokenizer.ids(probe, add_special=False).tolist()
        full = tokenizer.ids(probe, add_special=True).tolist()
        for start in range(len(full) - len(bare) + 1):
            if bare and full[start : start + len(bare)] == bare:
                return full[:start], full[start + len(bare) :]
    return [], []


class _Distiller:
    """Runs single tokens through the transformer, packed many sequences per llama.cpp batch."""

    def __init__(self, embedder: LlamaEmbedder, tokenizer: GGUFTokenizer) -> None:
        self.embedder = embedder
        self.prefix, self.suffix = _special_frame(tokenizer)

    def raw_vectors(self, ids: Sequence[int]) -> np.ndarray:
        """(len(ids), model_dim) pooled outputs of ``prefix + [id] + suffix``, not normalised."""
        import llama_cpp

        emb = self.embedder
        llm = emb._llm
        dim = emb.info.dimension
        out = np.zeros((len(ids), dim), dtype=np.float32)
        per_seq = len(self.prefix) + 1 + len(self.suffix)
        n_batch = llm.n_batch
        n_seq_max = max(1, int(llm.context_params.n_seq_max))
        group = max(1, min(n_seq_max, n_batch // per_seq))
        with emb._lock:
            emb._check_open()
            try:
                for start in range(0, len(ids), group):
                    chunk = ids[start : start + group]
                    llm._batch.reset()
                    for seq, token in enumerate(chunk):
                        llm._batch.add_sequence([*self.prefix, int(token), *self.suffix], seq, True)
                    llm._ctx.kv_cache_clear()
                    llm._ctx.decode(llm._batch)
                    for seq in range(len(chunk)):
                        ptr = llama_cpp.llama_get_embeddings_seq(llm._ctx.ctx, seq)
                        out[start + seq] = np.ctypeslib.as_array(ptr, shape=(dim,))
            finally:
                llm._batch.reset()
                llm._ctx.kv_cache_clear()
                llm.reset()
        return out


def zipf_sif_weights(n_vocab: int, sif: float) -> np.ndarray:
    """SIF weights a / (a + p) with p(rank) a Zipf distribution over token ids (id = frequency rank)."""
    if sif <= 0:
        return np.ones(n_vocab, dtype=np.float32)
    inv_rank = 1.0 / np.arange(2, n_vocab + 2, dtype=np.float64)
    proba: np.ndarray = inv_rank / inv_rank.sum()
    return (sif / (sif + proba)).astype(np.float32)


def distill_raw(embedder: LlamaEmbedder, tokenizer: GGUFTokenizer, max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``max_tokens`` meaningful ids and their pooled model outputs (not normalised)."""
    ids = np.flatnonzero(usable_ids(tokenizer))[:max_tokens]
    if ids.size == 0:
        raise ModelError(f"the vocabulary of {embedder.info.path} has no ordinary tokens to distill")
    started = time.perf_counter()
    raw = _Distiller(embedder, tokenizer).raw_vectors(ids.tolist())
    log.info(
        "ran %d of %d tokens of %s through the model in %.1f s",
        ids.size, tokenizer.n_vocab, Path(embedder.info.path).name, time.perf_counter() - started,
    )  # fmt: skip
    return ids, raw


def build_table(
    ids: np.ndarray, raw: np.ndarray, usable: np.ndarray, source_fingerprint: str, settings: StaticSettings
) -> StaticTable:
    """Centre, reduce (PCA) and weight raw token vectors into a table over the whole vocabulary."""
    n_vocab = usable.shape[0]
    model_dim = raw.shape[1]
    mean = raw.mean(axis=0)
    centred = raw - mean
    dims = model_dim if settings.pca_dims <= 0 else min(settings.pca_dims, model_dim, ids.size)
    # PCA through the covariance (model_dim x model_dim): cheap for any vocabulary size.
    cov = (centred.T.astype(np.float64) @ centred.astype(np.float64)) / max(1, ids.size - 1)
    eigvals, eigvecs = np.linalg.eigh(cov)
    order = np.argsort(eigvals)[::-1][:dims]
    basis = eigvecs[:, order].astype(np.float32)
    weights = zipf_sif_weights(n_vocab, settings.sif)
    weights[~usable] = 0.0
    rows = np.zeros((n_vocab, dims), dtype=np.float32)
    rows[ids] = (centred @ basis) * weights[ids, None]
    known = np.zeros(n_vocab, dtype=bool)
    known[ids] = True
    known[~usable] = True  # nothing to distill: their row stays zero
    return StaticTable(rows, known, mean.astype(np.float32), basis, weights, source_fingerprint, settings.key())


def usable_ids(tokenizer: GGUFTokenizer) -> np.ndarray:
    """Mask of the ids that carry text (not control, unused or unknown tokens)."""
    mask: np.ndarray = (tokenizer.attributes() & (_ATTR_UNKNOWN | _ATTR_UNUSED | _ATTR_CONTROL)) == 0
    return mask


def distill(
    embedder: LlamaEmbedder, tokenizer: GGUFTokenizer, source_fingerprint: str, settings: StaticSettings
) -> StaticTable:
    """Distill the first ``settings.max_tokens`` meaningful ids of the vocabulary into a table."""
    ids, raw = distill_raw(embedder, tokenizer, settings.max_tokens)
    return build_table(ids, raw, usable_ids(tokenizer), source_fingerprint, settings)


def static_cache_path(gguf: GGUFInfo, settings: StaticSettings) -> Path:
    from .provision import models_dir

    return models_dir() / "static" / f"{gguf.fingerprint[:24]}-{settings.key()}.npz"


# --------------------------------------------------------------------------------------------- embedder


class StaticEmbedder(Embedder):
    """An ``Embedder`` over a distilled static table: weighted mean of token rows, L2-normalised."""

    batch_size = 1024

    def __init__(
        self,
        table: StaticTable,
        tokenizer: GGUFTokenizer,
        gguf: GGUFInfo,
        *,
        context_length: int,
        distiller: LlamaEmbedder | None = None,
        cache_path: Path | None = None,
        owned: LlamaEmbedder | None = None,
    ) -> None:
        self.table = table
        self._owned = owned  # a transformer loaded only to distill: closed with this embedder
        self.tokenizer = tokenizer
        self._distiller = _Distiller(distiller, tokenizer) if distiller is not None else None
        self._fill_lock = threading.Lock()
        self._cache_path = cache_path
        self._dirty = False
        h = hashlib.sha256()
        for part in ("static", gguf.fingerprint, table.settings_key, str(context_length)):
            h.update(part.encode("utf-8"))
            h.update(b"\0")
        self.info = ModelInfo(
            name=f"{gguf.name} (static)",
            path=str(gguf.path),
            dimension=table.dimension,
            # The chunker sizes chunks by this: the same as the transformer's, so both tiers see the
            # same chunks and a chunk's static vector can later be replaced by its model vector.
            context_length=context_length,
            pooling="static-mean",
            fingerprint=h.hexdigest()[:32],
        )

    @classmethod
    def from_model(
        cls,
        model_path: str | Path,
        *,
        settings: StaticSettings | None = None,
        transformer: LlamaEmbedder | None = None,
        threads: int = 0,
    ) -> StaticEmbedder:
        """The static tier of a GGUF model: from the cache, or distilled now (and cached)."""
        settings = settings or StaticSettings()
        gguf = inspect_gguf(model_path)
        tokenizer = GGUFTokenizer(gguf.path)
        path = static_cache_path(gguf, settings)
        table = StaticTable.load(path, source_fingerprint=gguf.fingerprint, settings_key=settings.key())
        owned: LlamaEmbedder | None = None
        if transformer is None and (table is None or not table.known.all()):
            from .llama import LlamaEmbedder

            owned = transformer = LlamaEmbedder(gguf.path, threads=threads, gguf_info=gguf)
        try:
            if table is None:
                assert transformer is not None
                table = distill(transformer, tokenizer, gguf.fingerprint, settings)
                try:
                    table.save(path)
                except OSError as exc:  # a read-only cache costs a distillation per start, nothing more
                    log.warning("cannot cache the static table at %s: %s", path, exc)
            trained = gguf.context_length if gguf.context_length > 0 else 512
            context = max(8, min(trained, 512))
            if transformer is not None:
                context = transformer.info.context_length
            if owned is not None and table.known.all():  # loaded only to distill: free it now
                owned.close()
                owned = transformer = None
            embedder = cls(
                table,
                tokenizer,
                gguf,
                context_length=context,
                distiller=transformer if not table.known.all() else None,
                cache_path=path,
                owned=owned,
            )
        except BaseException:
            tokenizer.close()
            if owned is not None:
                owned.close()
            raise
        return embedder

    # -- Embedder -------------------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        return self.tokenizer.count(text)

    def cap(self, text: str) -> str:
        """No positional limit: a static model reads the whole text."""
        return text

    def token_ids(self, texts: Sequence[str]) -> list[np.ndarray]:
        ids = self.tokenizer.ids
        return [ids(t) for t in texts]

    def _embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.pool(self.token_ids(texts))

    def pool(self, id_lists: Sequence[np.ndarray]) -> np.ndarray:
        """Weighted mean of each id list's rows (the weights are already in the rows)."""
        out = np.zeros((len(id_lists), self.table.dimension), dtype=np.float32)
        if not id_lists:
            return out
        flat = np.concatenate(id_lists)
        if flat.size:
            self._fill(flat)
        rows = self.table.rows
        # One gather-and-sum per text: 50x faster than np.add.reduceat over the stacked rows (measured).
        for i, ids in enumerate(id_lists):
            if len(ids):
                out[i] = rows[ids].sum(axis=0) / len(ids)
        # A text of only unknown or special tokens pools to zero, which the store's integrity check
        # rejects as a broken vector: give it the first principal direction instead (a fixed, weak match).
        empty = ~out.any(axis=1)
        if empty.any():
            out[empty, 0] = 1.0
        return out

    def _fill(self, ids: np.ndarray) -> None:
        """Distill tokens met for the first time (only past ``max_tokens`` of a huge vocabulary)."""
        table = self.table
        if self._distiller is None:
            return  # unknown ids keep a zero row: they count in the length but add nothing
        missing = np.unique(ids[~table.known[ids]])
        if missing.size == 0:
            return
        with self._fill_lock:
            missing = missing[~table.known[missing]]
            if missing.size == 0:
                return
            raw = self._distiller.raw_vectors(missing.tolist())
            table.rows[missing] = ((raw - table.mean) @ table.basis) * table.weights[missing, None]
            table.known[missing] = True
            self._dirty = True

    def close(self) -> None:
        if self._dirty and self._cache_path is not None:
            with contextlib.suppress(OSError):
                self.table.save(self._cache_path)
            self._dirty = False
        self.tokenizer.close()
        if self._owned is not None:
            self._owned.close()
            self._owned = None
