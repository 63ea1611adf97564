"""The embedder interface. Batching, normalisation and length capping live here, once."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .packing import packed_calls


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the engine needs to know about a model, read from the model file itself."""

    name: str
    path: str
    dimension: int
    context_length: int  # max tokens per input, including special tokens
    pooling: str  # "mean", "cls", "last", ...
    fingerprint: str  # changes when the vectors would change (file content, prefixes)
    query_prefix: str = ""
    document_prefix: str = ""


# Tokens a text may have beyond one per UTF-8 byte (BOS/EOS/CLS/SEP, a SentencePiece dummy prefix): ``cap``
# skips counting a text that fits even then.
FIT_MARGIN_TOKENS = 16


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors of ``info.dimension``."""

    info: ModelInfo
    batch_size: int = 32

    @abstractmethod
    def _embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts already prefixed and capped; return an (n, dim) array (not yet normalised)."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for ``text`` (special tokens included)."""

    @property
    def pack_capacity(self) -> int | None:
        """Tokens per model decode when texts are packed several to a decode (llama.cpp's n_batch), so
        that ``embed_packed`` plans which texts share a call; None: texts go in the order given."""
        return None

    def vocabulary_path(self) -> str | None:
        """A GGUF file whose vocabulary, loaded alone, counts tokens exactly as ``count_tokens`` does.

        Lets another process chunk with the same token counts (engine/chunk_worker.py); None when
        counting needs this object (a model server, a wrapper).
        """
        return None

    def cap(self, text: str) -> str:
        """Cut ``text`` so it fits the model's context; llama.cpp aborts the process otherwise."""
        if len(text) * 4 + FIT_MARGIN_TOKENS <= self.info.context_length or (
            len(text) + FIT_MARGIN_TOKENS <= self.info.context_length
            and len(text.encode("utf-8", "surrogatepass")) + FIT_MARGIN_TOKENS <= self.info.context_length
        ):
            # Fits without counting: no tokenizer makes more tokens than the text has UTF-8 bytes, plus its
            # special tokens. A query then needs no vocabulary in this process (a restart loads none).
            return text
        return self._fit(text)[0]

    def prepare_tokens(self) -> None:  # noqa: B027 - optional hook
        """Token counts are coming (a first index will chunk every file): load what counting needs in the
        background now. Counting loads it anyway when it is not ready; nothing to load here."""

    def _fit(self, text: str) -> tuple[str, int]:
        """``cap(text)`` and its token count (counted once on the common path: the text fits)."""
        limit = self.info.context_length
        count = self.count_tokens(text)
        if count <= limit:
            return text, count
        lo, hi = 0, len(text)
        while lo < hi:  # longest prefix that fits
            mid = (lo + hi + 1) // 2
            if self.count_tokens(text[:mid]) <= limit:
                lo = mid
            else:
                hi = mid - 1
        return text[:lo], self.count_tokens(text[:lo])

    def embed_batch(self, texts: Iterable[str], *, batch_size: int | None = None) -> Iterator[np.ndarray]:
        """Embed documents in batches, yielding one normalised (n, dim) array per batch."""
        size = batch_size or self.batch_size
        batch: list[str] = []
        for text in texts:
            batch.append(self.cap(self.info.document_prefix + text))
            if len(batch) >= size:
                yield _normalise(self._embed_texts(batch))
                batch = []
        if batch:
            yield _normalise(self._embed_texts(batch))

    def embed_packed(
        self, texts: Sequence[str], *, batch_size: int | None = None
    ) -> Iterator[tuple[Sequence[int], np.ndarray]]:
        """Embed documents in calls whose texts fill the model's decodes: yields (positions, vectors).

        With ``pack_capacity`` set, one first-fit-decreasing plan covers all of ``texts`` (the caller's
        write batch) and is cut into calls of about ``batch_size`` texts (engine/models/packing.py);
        ``positions`` index ``texts`` and together cover each exactly once, in an order of the plan's
        choosing. Without it, the calls of ``embed_batch`` in input order. A consumer may stop between
        calls and keep what it has.
        """
        capacity = self.pack_capacity
        if not capacity:
            offset = 0
            for batch in self.embed_batch(texts, batch_size=batch_size):
                yield range(offset, offset + len(batch)), batch
                offset += len(batch)
            return
        fitted = [self._fit(self.info.document_prefix + t) for t in texts]
        lengths, capped = [n for _, n in fitted], [t for t, _ in fitted]
        for call in packed_calls(lengths, capacity, batch_size or self.batch_size, ties=capped):
            yield call, _normalise(self._embed_texts([capped[i] for i in call]))

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.info.dimension), dtype=np.float32)
        matrix = np.empty((len(texts), self.info.dimension), dtype=np.float32)
        for positions, vectors in self.embed_packed(texts):
            matrix[list(positions)] = vectors
        return matrix

    def embed_query(self, query: str) -> np.ndarray:
        vector: np.ndarray = _normalise(self._embed_texts([self.cap(self.info.query_prefix + query)]))[0]
        return vector

    def embed_query_alone(self, query: str) -> np.ndarray:
        """``embed_query`` when little else of the query runs beside it (a small index's search is all in
        memory, engine/bm25.py): an embedder that keeps cores free for the query's other work may use
        them all (``WorkerEmbedder``). The same vector either way."""
        return self.embed_query(query)

    def embed_interactive(self, texts: Sequence[str]) -> np.ndarray:
        """Embed a few documents someone waits for (an unsaved buffer's chunks, a selection): like
        ``embed_documents``; an embedder with a separate query worker runs them there, ahead of indexing."""
        return self.embed_documents(texts)

    def release_query_worker(self) -> None:  # noqa: B027 - optional hook
        """No query comes for a while (an index-only run): free what only queries use; the next query
        brings it back. Nothing to free here."""

    def release_index_worker(self) -> None:  # noqa: B027 - optional hook
        """No document batch comes for a while (the index's maintenance runs): free what only indexing
        uses; the next batch brings it back. Nothing to free here."""

    def release_worker_pages(self) -> None:  # noqa: B027 - optional hook
        """The index's maintenance is about to peak: model processes that idle give back the file pages
        they hold (the mapped model, code); their next call reads back what it touches. Nothing here."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release native resources."""


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms: np.ndarray = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    normalised: np.ndarray = vectors / norms
    return normalised
