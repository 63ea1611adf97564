"""The metrics registry: what is recorded comes out as valid Prometheus text and as JSON."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from engine.metrics import Metrics


def test_prometheus_text_parses_and_counts_match() -> None:
    m = Metrics()
    m.embeddings.labels("model").inc(3)
    m.embedding_tokens.labels("model").inc(120)
    m.search_seconds.labels("hybrid").observe(0.004)
    m.searches.labels("semantic").inc()
    families = {f.name: f for f in text_string_to_metric_families(m.prometheus_text())}
    embedded = [s for s in families["semcode_embeddings"].samples if s.name == "semcode_embeddings_total"]
    assert embedded[0].value == 3 and embedded[0].labels == {"model_tier": "model"}
    count = [s for s in families["semcode_search_seconds"].samples if s.name.endswith("_count")]
    assert count[0].value == 1
    head = m.headline()
    assert head["embeddings"] == 3 and head["searches"] == 1 and head["meanSearchMs"] == 4.0


def test_snapshot_is_json_friendly_and_separate_per_registry() -> None:
    a, b = Metrics(), Metrics()
    a.errors.labels("model").inc()
    assert a.snapshot()["semcode_errors_total"][0]["value"] == 1
    assert "semcode_errors_total" not in b.snapshot() and b.headline()["errors"] == 0


def test_http_endpoint_serves_on_loopback_only() -> None:
    m = Metrics()
    m.cache_hits.inc(7)
    server = m.serve(0)
    try:
        port = server.server_address[1]
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert "semcode_embedding_cache_hits_total 7.0" in body
    finally:
        server.shutdown()
    try:
        m.serve(0, host="0.0.0.0")
    except ValueError:
        pass
    else:  # pragma: no cover
        raise AssertionError("a non-loopback address must be refused")
