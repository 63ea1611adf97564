"""Process-wide metrics: counters, gauges and histograms, exported as Prometheus text and as JSON.

One registry per process (``METRICS``), shared by every workspace the process hosts; the engine's
parts record into it and the front ends export it (``semcode/metrics`` over LSP, ``semcode status
--metrics``, an opt-in loopback HTTP endpoint). prometheus_client is the maintained reference client;
it is imported lazily so a process that never records pays nothing.
"""

from __future__ import annotations

import threading
from typing import Any

from .errors import missing_dependency

# Latency buckets in seconds: a query is ~2-30 ms, an embedding batch 0.1-5 s.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_COUNT_BUCKETS = (0, 1, 5, 10, 20, 50, 100, 200)


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise missing_dependency("prometheus_client", "prometheus-client") from exc
    return prometheus_client


class Metrics:
    """The metric families semcode records. Label values are small fixed sets (never paths or queries)."""

    def __init__(self) -> None:
        prom = _prometheus()
        self.registry = prom.CollectorRegistry(auto_describe=True)
        r = self.registry
        self.embeddings = prom.Counter("semcode_embeddings", "Texts embedded by a model", ["model_tier"], registry=r)
        self.embedding_tokens = prom.Counter(
            "semcode_embedding_tokens", "Tokens sent to a model", ["model_tier"], registry=r
        )
        self.embedding_seconds = prom.Histogram(
            "semcode_embedding_batch_seconds", "Wall time of one embedding batch", ["model_tier"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.cache_hits = prom.Counter(
            "semcode_embedding_cache_hits", "Chunks whose vector came from the content-hash cache", registry=r
        )
        self.cache_evictions = prom.Counter(
            "semcode_embedding_cache_evictions",
            "Vectors evicted from the persistent embedding cache (least recently used first)",
            registry=r,
        )
        self.cache_vectors = prom.Gauge(
            "semcode_embedding_cache_vectors", "Vectors held by the persistent embedding cache", registry=r
        )
        self.searches = prom.Counter("semcode_searches", "Searches answered", ["kind"], registry=r)
        self.search_seconds = prom.Histogram(
            "semcode_search_seconds", "Latency of one search, by the tier that answered", ["tier"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.search_results = prom.Histogram(
            "semcode_search_results", "Hits returned by one search", buckets=_COUNT_BUCKETS, registry=r
        )
        self.index_files = prom.Gauge("semcode_index_files", "Files in the index", registry=r)
        self.index_chunks = prom.Gauge("semcode_index_chunks", "Chunks in the index", registry=r)
        self.files_indexed = prom.Counter("semcode_files_indexed", "Files read and chunked", registry=r)
        self.worker_restarts = prom.Counter(
            "semcode_model_worker_restarts", "Times a model worker process was restarted", registry=r
        )
        self.errors = prom.Counter("semcode_errors", "Expected failures, by kind", ["kind"], registry=r)

    # ----------------------------------------------------------------- export
    def prometheus_text(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        return _prometheus().generate_latest(self.registry).decode("utf-8")

    def snapshot(self) -> dict[str, Any]:
        """Every sample as JSON-friendly data: ``{metric: [{"labels": {...}, "value": v}, ...]}``."""
        out: dict[str, list[dict[str, Any]]] = {}
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue  # creation timestamps are noise for people reading JSON
                out.setdefault(sample.name, []).append({"labels": dict(sample.labels), "value": sample.value})
        return out

    def headline(self) -> dict[str, Any]:
        """The few figures ``semcode/status`` shows: totals and mean latencies."""
        values = self.snapshot()

        def total(name: str) -> float:
            return sum(s["value"] for s in values.get(name, []))

        searches = total("semcode_search_seconds_count")
        batches = total("semcode_embedding_batch_seconds_count")
        return {
            "embeddings": int(total("semcode_embeddings_total")),
            "embeddingTokens": int(total("semcode_embedding_tokens_total")),
            "cacheHits": int(total("semcode_embedding_cache_hits_total")),
            "cacheEvictions": int(total("semcode_embedding_cache_evictions_total")),
            "searches": int(total("semcode_searches_total")),
            "meanSearchMs": round(1000 * total("semcode_search_seconds_sum") / searches, 2) if searches else None,
            "meanEmbeddingBatchMs": (
                round(1000 * total("semcode_embedding_batch_seconds_sum") / batches, 2) if batches else None
            ),
            "workerRestarts": int(total("semcode_model_worker_restarts_total")),
            "errors": int(total("semcode_errors_total")),
        }

    def serve(self, port: int, *, host: str = "127.0.0.1") -> Any:
        """Serve ``/metrics`` over HTTP on loopback only (opt-in: ``--metrics-port``). Returns the server."""
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the metrics endpoint listens on loopback only")
        server, _thread = _prometheus().start_http_server(port, addr=host, registry=self.registry)
        return server


_METRICS: Metrics | None = None
_LOCK = threading.Lock()


def metrics() -> Metrics:
    """The process's metrics (created on first use)."""
    global _METRICS
    with _LOCK:
        if _METRICS is None:
            _METRICS = Metrics()
        return _METRICS
