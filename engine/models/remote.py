"""``RemoteEmbedder``: embeddings from an OpenAI-compatible ``/v1/embeddings`` server.

What llama.cpp's ``llama-server --embedding``, llama-cpp-python's ``llama_cpp.server``, vLLM, TEI and
hosted services speak. One server can then embed for a whole team (and for CI publishing a shared
index), so a laptop never loads a model.

The server is probed once when the embedder is built: an unreachable server, a wrong key or a
non-embedding endpoint fail right there with a message saying what to fix. The probe also learns the
dimension; every later answer is checked against it, so vectors of two models are never mixed in one
index. The fingerprint is made of the served model's name and dimension (not the URL: teammates reach
the same server under different host names), so a server switched to another model means a rebuild,
which the store reports as "the embedding model changed".

Token counts: the chunker needs many small counts, so they come from the server's tokenizer when it
has one (llama.cpp's ``/tokenize``, llama-cpp-python's ``/extras/tokenize/count``) over one kept-alive
connection per thread, cached; without one, a conservative estimate. Texts are capped to the model's
context before they are sent, and a text the server still rejects as too long is cut further and sent
again, so one odd chunk never fails an index.

The API key is read from ``$SEMCODE_EMBEDDINGS_API_KEY`` at run time; it is never stored in the
index, the fingerprint, errors or logs.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import math
import os
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import numpy as np

from ..errors import (
    ConfigError,
    EmbeddingDimensionError,
    EmbeddingModelChangedError,
    EmbeddingServerResponseError,
    EmbeddingServerUnavailableError,
)
from .base import Embedder, ModelInfo, _normalise

log = logging.getLogger(__name__)

API_KEY_ENV = "SEMCODE_EMBEDDINGS_API_KEY"
DEFAULT_CONTEXT = 512  # tokens; what most embedding models (and llama-server's default ubatch) accept
CONSERVATIVE_CHARS_PER_TOKEN = 2.5  # no tokenizer: code averages 3-4 chars/token, punctuation less
EXACT_ABOVE_BYTES = 96  # shorter texts (single lines) are estimated, longer ones counted by the server
_TOO_LONG_HINTS = ("too long", "too large", "exceed", "context", "maximum", "n_ubatch", "physical batch")
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


@dataclass(frozen=True, slots=True)
class RemoteOptions:
    """How hard to try. The defaults ride out a server restart (model load included) mid-index."""

    timeout: float = 60.0  # seconds per request
    retry_seconds: float = 60.0  # give up on a request after this long without an answer
    start_retry_seconds: float = 3.0  # at start: tell the user quickly that the server is not there
    query_retry_seconds: float = 5.0  # a search waits this long at most for a restarting server
    concurrency: int = 4  # batches in flight at once
    backoff_initial: float = 0.25
    backoff_max: float = 5.0


class _TextTooLong(Exception):
    """The server rejected an input as longer than its context."""


class _Http:
    """JSON over HTTP(S) with one kept-alive connection per thread (tokenize calls are many and small)."""

    def __init__(self, base: str, api_key: str | None, timeout: float) -> None:
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"embeddings_url must be an http:// or https:// URL, got {base!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port
        self.prefix = parts.path.rstrip("/")
        self.display = f"{parts.scheme}://{parts.netloc}{self.prefix}"  # never carries the key
        self._api_key = api_key
        self.timeout = timeout
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            conn = cls(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any, str]:
        """One attempt: (status, parsed JSON or None, raw text). Raises OSError when unreachable."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        for attempt in (0, 1):
            conn = self._connection()
            try:
                conn.request(method, self.prefix + path, body=data, headers=headers)
                response = conn.getresponse()
                raw = response.read().decode("utf-8", errors="replace")
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A kept-alive connection the server closed meanwhile: once more on a fresh one.
                self._drop()
                if attempt:
                    raise
            except (OSError, http.client.HTTPException):
                self._drop()
                raise
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        if response.getheader("Connection", "").lower() == "close":
            self._drop()
        return response.status, parsed, raw


def _error_text(parsed: Any, raw: str) -> str:
    if isinstance(parsed, dict):
        err = parsed.get("error", parsed.get("detail", parsed.get("message")))
        if isinstance(err, dict):
            err = err.get("message", err)
        if err:
            return str(err)[:300]
    return raw.strip()[:300] or "(empty answer)"


class _Embeddings(NamedTuple):
    """One ``/v1/embeddings`` answer."""

    vectors: np.ndarray  # (texts, dimension) float32
    model: str  # the model the server says it used; "" when it does not say


class RemoteEmbedder(Embedder):
    def __init__(
        self,
        url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        batch_size: int = 32,
        max_tokens: int = 0,
        query_prefix: str | None = None,
        document_prefix: str | None = None,
        options: RemoteOptions | None = None,
    ) -> None:
        self.options = options or RemoteOptions()
        self.batch_size = batch_size
        base = url.strip().rstrip("/")
        for suffix in ("/embeddings", "/v1"):
            base = base.removesuffix(suffix)
        self._http = _Http(base, api_key if api_key is not None else os.environ.get(API_KEY_ENV), self.options.timeout)
        self.url = self._http.display
        self._requested_model = model or None
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._count_cache: OrderedDict[str, int] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._closed = False

        served = self._served_model()
        probe = self._post_embeddings(
            ["semcode dimension probe"], model=self._requested_model or served, budget=self.options.start_retry_seconds
        )
        dimension = int(probe.vectors.shape[1])
        name = self._requested_model or probe.model or served or "remote-model"
        self._send_model = self._requested_model or served or None
        self._served_name = probe.model
        self._tokenize_style = self._detect_tokenizer()
        context = max_tokens or self._server_context() or DEFAULT_CONTEXT
        from ..config import EngineConfig
        from .registry import resolve_prefixes

        prefixes = resolve_prefixes(
            EngineConfig(query_prefix=query_prefix, document_prefix=document_prefix), name, _basename(name)
        )
        self.info = ModelInfo(
            name=_basename(name),
            path=self.url,
            dimension=dimension,
            context_length=context,
            pooling="server",
            fingerprint=_fingerprint(_basename(name), dimension, context, prefixes.query, prefixes.document),
            query_prefix=prefixes.query,
            document_prefix=prefixes.document,
        )
        self._specials = 2  # [CLS] [SEP] / BOS EOS until the server says
        if self._tokenize_style:
            self._specials = self._server_count("")
        log.info(
            "embedding server %s: model %s, dim %d, context %d, tokenizer %s",
            self.url, self.info.name, dimension, context, self._tokenize_style or "estimate",
        )  # fmt: skip

    # -- probing ------------------------------------------------------------------------------------

    def _served_model(self) -> str | None:
        try:
            status, parsed, _ = self._http.request("GET", "/v1/models")
        except (OSError, http.client.HTTPException):
            return None  # the embeddings probe right after says so clearly
        if status == 200 and isinstance(parsed, dict) and parsed.get("data"):
            first = parsed["data"][0]
            if isinstance(first, dict) and first.get("id"):
                return str(first["id"])
        return None

    def _detect_tokenizer(self) -> str | None:
        probes = (
            ("llama.cpp", "/tokenize", {"content": "def f(): pass", "add_special": True}),
            ("llama-cpp-python", "/extras/tokenize/count", {"input": "def f(): pass"}),
        )
        for style, path, body in probes:
            try:
                status, parsed, _ = self._http.request("POST", path, body)
            except (OSError, http.client.HTTPException):
                continue
            if status == 200 and isinstance(parsed, dict) and ("tokens" in parsed or "count" in parsed):
                return style
        return None

    def _server_context(self) -> int | None:
        """llama.cpp's ``/props`` tells its context; others do not (the setting or 512 then)."""
        try:
            status, parsed, _ = self._http.request("GET", "/props")
        except (OSError, http.client.HTTPException):
            return None
        if status != 200 or not isinstance(parsed, dict):
            return None
        n_ctx = (parsed.get("default_generation_settings") or {}).get("n_ctx")
        return min(int(n_ctx), DEFAULT_CONTEXT) if isinstance(n_ctx, int) and n_ctx > 0 else None

    # -- tokens -------------------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        size = len(text.encode("utf-8", errors="replace"))
        if self._tokenize_style is None or size <= EXACT_ABOVE_BYTES:
            # The chunker asks for every line: a short text gets an estimate that errs high (at most one
            # token per byte), a long one (a window, a symbol: what must fit) the server's exact count.
            return min(size, math.ceil(size / CONSERVATIVE_CHARS_PER_TOKEN)) + self._specials
        with self._cache_lock:
            hit = self._count_cache.get(text)
            if hit is not None:
                self._count_cache.move_to_end(text)
                return hit
        count = self._server_count(text)
        with self._cache_lock:
            self._count_cache[text] = count
            if len(self._count_cache) > 50_000:
                self._count_cache.popitem(last=False)
        return count

    def _server_count(self, text: str) -> int:
        if self._tokenize_style == "llama.cpp":
            parsed = self._call("POST", "/tokenize", {"content": text, "add_special": True})
            tokens = parsed.get("tokens") if isinstance(parsed, dict) else None
            if isinstance(tokens, list):
                return len(tokens)
        else:
            parsed = self._call("POST", "/extras/tokenize/count", {"input": text})
            count = parsed.get("count") if isinstance(parsed, dict) else None
            if isinstance(count, int):
                return count
        raise EmbeddingServerResponseError(f"the embedding server {self.url} answered a tokenize call without tokens")

    def cap(self, text: str) -> str:
        limit = self.info.context_length
        # Every token covers at least one byte, so a text this short fits without asking the server.
        if len(text.encode("utf-8", errors="replace")) + self._specials <= limit:
            return text
        n = self.count_tokens(text)
        while n > limit and text:
            text = text[: max(1, int(len(text) * limit / n * 0.95))] if len(text) > 1 else ""
            n = self.count_tokens(text)
        return text

    # -- embedding ----------------------------------------------------------------------------------

    def _embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.info.dimension), dtype=np.float32)
        return self._embed_resilient(list(texts))

    def _embed_resilient(self, texts: list[str], budget: float | None = None) -> np.ndarray:
        """Embed; a batch rejected as too long is split until the culprit is found and cut shorter."""
        try:
            result = self._post_embeddings(texts, model=self._send_model, budget=budget)
        except _TextTooLong:
            if len(texts) > 1:
                half = len(texts) // 2
                parts = (self._embed_resilient(texts[:half], budget), self._embed_resilient(texts[half:], budget))
                return np.concatenate(parts)
            text = texts[0]
            if len(text) <= 1:
                raise EmbeddingServerResponseError(
                    f"the embedding server {self.url} rejects even a one-character text as too long"
                ) from None
            log.warning("the embedding server rejected a %d-character text as too long; cutting it", len(text))
            return self._embed_resilient([text[: len(text) * 3 // 4]], budget)
        vectors = result.vectors
        if vectors.shape[1] != self.info.dimension:
            raise EmbeddingDimensionError(
                f"the embedding server {self.url} now answers vectors of dimension {vectors.shape[1]}, "
                f"but this index holds dimension {self.info.dimension} (model {self.info.name}): the server "
                "was switched to another model; restart semcode to rebuild the index for it"
            )
        if self._served_name and result.model and result.model != self._served_name:
            raise EmbeddingModelChangedError(
                f"the embedding server {self.url} now serves {result.model!r}, but this index was built with "
                f"{self._served_name!r}: restart semcode to rebuild the index for the new model"
            )
        return vectors

    def embed_batch(self, texts: Iterable[str], *, batch_size: int | None = None) -> Iterator[np.ndarray]:
        """Batches sent ``concurrency`` at a time, yielded in order."""
        size = batch_size or self.batch_size
        pool = self._executor()
        window = max(1, self.options.concurrency)
        in_flight: list[Future[np.ndarray]] = []

        def job(batch: list[str]) -> np.ndarray:
            return _normalise(self._embed_texts([self.cap(self.info.document_prefix + t) for t in batch]))

        batch: list[str] = []
        try:
            for text in texts:
                batch.append(text)
                if len(batch) >= size:
                    in_flight.append(pool.submit(job, batch))
                    batch = []
                    if len(in_flight) >= window:
                        yield in_flight.pop(0).result()
            if batch:
                in_flight.append(pool.submit(job, batch))
            while in_flight:
                yield in_flight.pop(0).result()
        finally:
            for future in in_flight:  # an error or a cancelled consumer: do not leave work queued
                future.cancel()

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=max(1, self.options.concurrency), thread_name_prefix="semcode-embed"
                )
            return self._pool

    def _post_embeddings(self, texts: list[str], *, model: str | None, budget: float | None = None) -> _Embeddings:
        body: dict[str, Any] = {"input": texts, "encoding_format": "float"}
        if model:
            body["model"] = model
        parsed = self._call("POST", "/v1/embeddings", body, budget=budget, too_long_ok=True)
        data = parsed.get("data") if isinstance(parsed, dict) else None
        if not isinstance(data, list) or len(data) != len(texts):
            raise EmbeddingServerResponseError(
                f"{self.url}/v1/embeddings did not answer {len(texts)} embeddings; is it an embedding server "
                "(llama-server needs --embedding)?"
            )
        try:
            ordered = sorted(data, key=lambda item: item.get("index", 0))
            vectors = np.asarray([item["embedding"] for item in ordered], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbeddingServerResponseError(
                f"{self.url}/v1/embeddings answered malformed embeddings ({exc}); "
                "base64 or nested (per-token) vectors are not supported: use pooled embeddings"
            ) from exc
        if vectors.ndim != 2 or vectors.shape[1] == 0:
            raise EmbeddingServerResponseError(
                f"{self.url}/v1/embeddings answered vectors of shape {vectors.shape}; the server must pool "
                "(llama-server: --pooling mean or cls, not none)"
            )
        return _Embeddings(vectors, str(parsed.get("model") or ""))

    def _call(
        self, method: str, path: str, body: Any = None, *, budget: float | None = None, too_long_ok: bool = False
    ) -> Any:
        """One request with retries and backoff while the server is down, restarting or overloaded."""
        budget = self.options.retry_seconds if budget is None else budget
        deadline = time.monotonic() + budget
        delay = self.options.backoff_initial
        attempts = 0
        while True:
            attempts += 1
            try:
                status, parsed, raw = self._http.request(method, path, body)
            except (OSError, http.client.HTTPException) as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                status, parsed, raw = None, None, ""
            else:
                if status == 200:
                    return parsed
                problem = f"HTTP {status}: {_error_text(parsed, raw)}"
                lowered = problem.lower()
                if too_long_ok and status in (400, 413, 422, 500) and any(h in lowered for h in _TOO_LONG_HINTS):
                    raise _TextTooLong(problem)
                if status in (401, 403):
                    raise EmbeddingServerResponseError(
                        f"the embedding server {self.url} refused the request ({problem}); set the API key in "
                        f"${API_KEY_ENV}"
                    )
                if status not in _RETRY_STATUS:
                    raise EmbeddingServerResponseError(
                        f"the embedding server {self.url} answered {method} {path} with {problem}"
                    )
            if self._closed or time.monotonic() + delay > deadline:
                break
            log.info("embedding server %s: %s; retrying in %.1fs", self.url, problem, delay)
            time.sleep(delay * (0.8 + 0.4 * random.random()))
            delay = min(delay * 2, self.options.backoff_max)
        if status is None:
            raise EmbeddingServerUnavailableError(
                f"cannot reach the embedding server at {self.url} ({problem}; {attempts} attempts over "
                f"{budget:.0f}s): start it (e.g. `llama-server --embedding -m MODEL.gguf --port 8080`) "
                "or unset embeddingsUrl to embed in-process"
            )
        raise EmbeddingServerUnavailableError(
            f"the embedding server at {self.url} kept failing ({problem}; {attempts} attempts over {budget:.0f}s)"
        )

    def embed_query(self, query: str) -> np.ndarray:
        # Someone is waiting for this one: fail within seconds, not after an indexing-sized budget.
        text = self.cap(self.info.query_prefix + query)
        vector: np.ndarray = _normalise(self._embed_resilient([text], self.options.query_retry_seconds))[0]
        return vector

    def close(self) -> None:
        self._closed = True
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None


def _basename(name: str) -> str:
    """A served model's name without the server's file path (llama.cpp reports the path it loaded)."""
    return name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or name


def _fingerprint(name: str, dimension: int, context: int, query_prefix: str, document_prefix: str) -> str:
    h = hashlib.sha256()
    for part in ("remote", name, str(dimension), str(context), query_prefix, document_prefix):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:32]
