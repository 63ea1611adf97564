"""RemoteEmbedder against llama-cpp-python's own OpenAI-compatible server on loopback (no mocks)."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from remote_servers import LlamaServer, free_port, make_corpus, narrow_model

from engine.config import EngineConfig
from engine.errors import (
    ConfigError,
    EmbeddingDimensionError,
    EmbeddingServerResponseError,
    EmbeddingServerUnavailableError,
)
from engine.models.remote import API_KEY_ENV, RemoteEmbedder, RemoteOptions
from engine.workspace import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(default_model_path: Path, tmp_path_factory: pytest.TempPathFactory):
    srv = LlamaServer(default_model_path, tmp_path_factory.mktemp("llama-server")).start()
    yield srv
    srv.kill()


@pytest.fixture
def own_server(default_model_path: Path, tmp_path: Path):
    """A server this test may kill, restart or switch to another model."""
    srv = LlamaServer(default_model_path, tmp_path)
    yield srv
    srv.kill()


def test_remote_vectors_match_in_process(server: LlamaServer, llama_embedder) -> None:
    remote = RemoteEmbedder(server.url + "/v1")
    texts = ["def parse_args(argv):\n    return argv[1:]", "open a file and read its lines", "x" * 3]
    assert remote.info.dimension == llama_embedder.info.dimension
    assert remote.info.name == "all-MiniLM-L6-v2"
    assert remote.info.path == server.url  # "/v1" is the API root, not part of the server's name
    cosine = (remote.embed_documents(texts) * llama_embedder.embed_documents(texts)).sum(axis=1)
    assert cosine.min() > 0.999
    assert float(remote.embed_query("read a file") @ llama_embedder.embed_query("read a file")) > 0.999
    long = "def handler(request):\n    return compute(request.user, request.body, settings.LIMIT)\n" * 30
    assert remote.count_tokens(long) == llama_embedder.count_tokens(long)  # the server's tokenizer
    assert remote.count_tokens("") == llama_embedder.count_tokens("")  # special tokens
    assert remote.info.fingerprint != llama_embedder.info.fingerprint  # another path to the vectors
    remote.close()


def test_long_texts_are_capped_not_rejected(server: LlamaServer, llama_embedder) -> None:
    remote = RemoteEmbedder(server.url)
    huge = "value = compute(alpha, beta) + offset[index] * 3\n" * 600  # ~8,000 tokens, 512 allowed
    capped = remote.cap(huge)
    assert 0 < len(capped) < len(huge)
    assert llama_embedder.count_tokens(capped) <= remote.info.context_length
    vectors = remote.embed_documents([huge, "short one", huge[:5000]])
    assert vectors.shape == (3, remote.info.dimension)
    assert np.isfinite(vectors).all()
    remote.close()


def test_server_down_at_start_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(EmbeddingServerUnavailableError) as info:
        RemoteEmbedder(url, options=RemoteOptions(start_retry_seconds=1.0))
    assert time.monotonic() - started < 15
    message = str(info.value)
    assert url in message and "start it" in message and "embeddingsUrl" in message


def test_settings_pick_the_remote_embedder(server: LlamaServer) -> None:
    from engine.models import load_embedder

    config = EngineConfig.from_dict({"embeddingsUrl": server.url, "embeddingsModel": "all-MiniLM-L6-v2"})
    assert config.embeddings_url == server.url
    embedder = load_embedder(config)
    assert isinstance(embedder, RemoteEmbedder)
    assert embedder.info.name == "all-MiniLM-L6-v2"
    embedder.close()
    with pytest.raises(ConfigError, match="http"):
        EngineConfig.from_dict({"embeddingsUrl": "ftp://example.invalid"})
    with pytest.raises(ConfigError):
        EngineConfig.from_dict({"embeddingsMaxTokens": -1})
    assert EngineConfig.from_dict({"embeddingsUrl": ""}).embeddings_url is None


def test_api_key_is_sent_and_never_shown(own_server: LlamaServer, monkeypatch: pytest.MonkeyPatch) -> None:
    own_server.start(extra=("--api_key", "sk-right-key-123"))
    monkeypatch.setenv(API_KEY_ENV, "sk-wrong-key-456")
    with pytest.raises(EmbeddingServerResponseError) as info:
        RemoteEmbedder(own_server.url)
    assert API_KEY_ENV in str(info.value) and "sk-wrong" not in str(info.value)
    monkeypatch.setenv(API_KEY_ENV, "sk-right-key-123")
    embedder = RemoteEmbedder(own_server.url)
    assert embedder.embed_query("hello").shape == (embedder.info.dimension,)
    assert "sk-right" not in repr(embedder.info) and "sk-right" not in embedder.url
    embedder.close()


def _corpus_workspace(tmp_path: Path, files: int, embedder: RemoteEmbedder) -> Workspace:
    root = tmp_path / "ws"
    make_corpus(root, files)
    return Workspace(root, EngineConfig(index_dir=str(tmp_path / "index")), embedder=embedder)


def test_server_dies_mid_index_and_comes_back(own_server: LlamaServer, tmp_path: Path) -> None:
    own_server.start()
    embedder = RemoteEmbedder(own_server.url, options=RemoteOptions(retry_seconds=120))
    ws = _corpus_workspace(tmp_path, 60, embedder)
    first_pid = own_server.proc.pid
    restarted = threading.Event()

    def restart_later() -> None:
        time.sleep(1.5)
        own_server.start()
        restarted.set()

    def progress(p) -> None:
        if p.done_files >= 10 and own_server.proc is not None and own_server.proc.pid == first_pid:
            own_server.kill()  # dies before a single chunk of this run was embedded
            threading.Thread(target=restart_later, daemon=True).start()

    stats = ws.index(progress)
    assert restarted.is_set() and own_server.proc.pid != first_pid
    assert stats.files_indexed == 60 and not stats.cancelled
    assert stats.chunks_embedded == stats.chunks_total == ws.store.count_chunks() > 60
    assert ws.check().ok
    hits = ws.search("validate an email address", limit=3)
    assert "validate_email_address" in hits[0].path
    embedder.close()


def test_server_gone_for_good_loses_nothing(own_server: LlamaServer, tmp_path: Path) -> None:
    own_server.start()
    embedder = RemoteEmbedder(own_server.url, options=RemoteOptions(retry_seconds=1.5))
    ws = _corpus_workspace(tmp_path, 30, embedder)

    def progress(p) -> None:
        if p.done_files >= 5:
            own_server.kill()

    with pytest.raises(EmbeddingServerUnavailableError, match="cannot reach the embedding server"):
        ws.index(progress)
    assert ws.check().ok  # nothing half-written: no file has rows without its manifest entry or vice versa
    own_server.start()
    stats = ws.index()
    assert stats.files_indexed + stats.files_unchanged == 30
    assert ws.check().ok and ws.store.count_files() == 30
    # A search does not wait an indexing-sized budget (60 s) for a server that is gone.
    patient = RemoteEmbedder(own_server.url)
    own_server.kill()
    started = time.monotonic()
    with pytest.raises(EmbeddingServerUnavailableError):
        patient.embed_query("where is the retry loop")
    assert time.monotonic() - started < 15
    embedder.close()
    patient.close()


def test_server_switched_to_another_dimension(own_server: LlamaServer, tmp_path: Path) -> None:
    own_server.start()
    embedder = RemoteEmbedder(own_server.url)
    ws = _corpus_workspace(tmp_path, 12, embedder)
    ws.index()
    assert embedder.info.dimension == 384
    narrow = narrow_model(tmp_path / "narrow-minilm.gguf")
    own_server.kill()
    own_server.start(model=narrow, alias="narrow-minilm-192")
    with pytest.raises(EmbeddingDimensionError) as info:
        embedder.embed_query("anything")
    assert "dimension 192" in str(info.value) and "dimension 384" in str(info.value)
    # A new process (a new embedder) sees the new model: its own index (one per model), never mixed vectors.
    fresh = RemoteEmbedder(own_server.url)
    assert fresh.info.dimension == 192 and fresh.info.name == "narrow-minilm-192"
    ws2 = Workspace(ws.root, ws.config, embedder=fresh)
    assert ws2.index_path != ws.index_path and ws2.index_path.parent == ws.index_path.parent
    stats = ws2.index()
    assert stats.chunks_embedded == stats.chunks_total > 0
    shutil.rmtree(tmp_path / "index", ignore_errors=True)
    embedder.close()
    fresh.close()
