"""The embedding worker: llama.cpp in child processes, crashes turned into errors and restarts.

Real model, real child processes, real signals: a child is killed the way the kernel or llama.cpp
would kill it (SIGKILL from the OOM killer, SIGILL from a bad build, SIGSEGV, SIGABRT from GGML_ASSERT).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest

import engine.models.worker as worker_mod
from engine.config import EngineConfig
from engine.errors import ModelError, ModelWorkerError
from engine.models import load_embedder
from engine.models.worker import WorkerEmbedder
from engine.models.worker_main import encode_json

ROOT = Path(__file__).resolve().parents[2]

TEXTS = [
    "hello world",
    "def add(a, b):\n    return a + b\n",
    "SELECT id, name FROM users WHERE created_at > NOW() - INTERVAL '7 days';",
    "Héllo Wörld, naïve café résumé",
    "日本語のテキストと English mixed 中文",
    "",
    "retry with exponential backoff and jitter when the server returns 503",
    " ".join(f"token{i % 97} value_{i}" for i in range(1200)),  # > 5000 tokens: capped
]


@pytest.fixture(scope="module")
def worker(default_model_path: Path) -> Iterator[WorkerEmbedder]:
    emb = WorkerEmbedder(default_model_path, threads=2)
    yield emb
    emb.close()


def _fresh(default_model_path: Path, **kwargs: object) -> WorkerEmbedder:
    return WorkerEmbedder(default_model_path, threads=1, **kwargs)  # type: ignore[arg-type]


def _gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (exited and reaped, or a zombie of someone else's)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            return any(line.startswith("State:") and "Z" in line for line in fh)
    except FileNotFoundError:
        return True


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return False


def test_load_embedder_runs_the_model_in_a_worker_by_default(default_model_path: Path, monkeypatch):
    emb = load_embedder(EngineConfig(model_path=str(default_model_path), threads=1))
    try:
        assert isinstance(emb, WorkerEmbedder)
        assert emb.pids["query"] not in (None, os.getpid())
    finally:
        emb.close()
    monkeypatch.setenv("SEMCODE_INPROCESS_MODEL", "1")
    inproc = load_embedder(EngineConfig(model_path=str(default_model_path), threads=1))
    try:
        assert type(inproc).__name__ == "LlamaEmbedder"
    finally:
        inproc.close()


def test_worker_embeddings_equal_the_in_process_ones(worker: WorkerEmbedder, llama_embedder):
    assert worker.info == llama_embedder.info
    got = worker.embed_documents(TEXTS)
    want = llama_embedder.embed_documents(TEXTS)
    assert got.shape == want.shape == (len(TEXTS), worker.info.dimension) and got.dtype == np.float32
    assert (got * want).sum(1).min() > 0.9999
    for text in TEXTS[:4]:
        assert float(worker.embed_query(text) @ llama_embedder.embed_query(text)) > 0.9999
    assert [worker.count_tokens(t) for t in TEXTS] == [llama_embedder.count_tokens(t) for t in TEXTS]
    assert worker.tokenize(TEXTS[3]) == llama_embedder.tokenize(TEXTS[3])
    assert worker.cap(TEXTS[-1]) == llama_embedder.cap(TEXTS[-1])


def test_a_long_query_alone_runs_on_every_thread_for_that_request_only(worker: WorkerEmbedder, monkeypatch):
    """``embed_query_alone`` (a small index's query: nothing but ~3 ms of Python beside it) asks the
    query worker for all of the embedder's threads for a long query, for that request only; a short
    one stays on the worker's own thread (faster: no barrier sleeps). The vector is the same either way."""
    import engine.models.worker as worker_module

    assert worker.threads == 2 and worker.query_threads == 1
    sent: list[dict[str, object]] = []
    original = worker_module.encode_json

    def recording(tag: bytes, obj: dict[str, object]) -> bytes:
        sent.append(obj)
        return original(tag, obj)

    monkeypatch.setattr(worker_module, "encode_json", recording)
    short = TEXTS[6]
    long = " ".join([TEXTS[6], TEXTS[2], "and log every attempt with its delay"])
    assert len(short) < worker_module.ALONE_MIN_CHARS <= len(long)
    for text in (short, long, short):
        plain = worker.embed_query(text)
        alone = worker.embed_query_alone(text)
        assert float(plain @ alone) > 0.9999
    assert [r.get("threads") for r in sent if r.get("op") == "embed"] == [None, None, None, 2, None, None]


def test_queries_and_documents_use_separate_workers_at_their_priorities(worker: WorkerEmbedder):
    worker.embed_query("warm")
    worker.embed_documents(["def f(): pass"])
    pids = worker.pids
    assert pids["query"] and pids["index"] and pids["query"] != pids["index"]
    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, pids["query"]) == base
    assert os.getpriority(os.PRIO_PROCESS, pids["index"]) == min(19, base + worker_mod.INDEX_NICE)
    for pid in pids.values():
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert b"OMP_WAIT_POLICY=PASSIVE" in environ or os.environ.get("OMP_WAIT_POLICY")


def test_kill_9_mid_batch_is_a_precise_error_then_a_restart(default_model_path: Path, llama_embedder):
    emb = _fresh(default_model_path)
    try:
        body = " + ".join(f"v{j}" for j in range(60))
        texts = [f"def function_{i}(x):\n    return x * {i} + {body}" for i in range(400)]
        outcome: dict[str, object] = {}

        def index() -> None:
            try:
                outcome["vectors"] = emb.embed_documents(texts)
            except ModelError as exc:
                outcome["error"] = exc

        t = threading.Thread(target=index)
        t.start()
        deadline = time.monotonic() + 30
        while emb.pids["index"] is None and time.monotonic() < deadline:
            time.sleep(0.02)
        pid = emb.pids["index"]
        assert pid is not None
        time.sleep(0.3)  # inside a batch
        os.kill(pid, signal.SIGKILL)
        t.join(60)
        error = outcome.get("error")
        assert isinstance(error, ModelWorkerError), outcome.keys()
        assert "SIGKILL" in str(error) and "out-of-memory" in str(error)
        assert emb.last_error == str(error)
        assert _wait_gone(pid)
        t0 = time.perf_counter()  # backing off: fails fast with the same error
        with pytest.raises(ModelWorkerError) as again:
            emb.embed_documents(["x = 1"])
        assert time.perf_counter() - t0 < 0.2 and str(again.value) == str(error)
        time.sleep(worker_mod.BACKOFF_START_S + 0.1)
        vectors = emb.embed_documents(texts[:3])  # restarted
        assert emb.restarts == 1 and emb.pids["index"] not in (None, pid)
        assert (vectors * llama_embedder.embed_documents(texts[:3])).sum(1).min() > 0.9999
        assert float(emb.embed_query("still fine") @ llama_embedder.embed_query("still fine")) > 0.9999
    finally:
        emb.close()


@pytest.mark.parametrize(
    ("sig", "words"),
    [
        (signal.SIGILL, ("SIGILL", "lacks an instruction", "scripts/build-llama.sh")),
        (signal.SIGSEGV, ("SIGSEGV", "scripts/build-llama.sh")),
        (signal.SIGABRT, ("SIGABRT", "llama.cpp rejected the input")),
        (signal.SIGBUS, ("SIGBUS", "model file changed")),
    ],
)
def test_a_crashed_worker_is_reported_with_its_cause(default_model_path: Path, sig: int, words: tuple[str, ...]):
    emb = _fresh(default_model_path)
    try:
        pid = emb.pids["query"]
        assert pid is not None
        os.kill(pid, sig)
        assert _wait_gone(pid)
        with pytest.raises(ModelWorkerError) as info:
            emb.embed_query("find the parser")
        for word in words:
            assert word in str(info.value)
        assert emb.last_error == str(info.value)
        time.sleep(worker_mod.BACKOFF_START_S + 0.1)
        assert emb.embed_query("find the parser").shape == (emb.info.dimension,)
        assert emb.restarts == 1
    finally:
        emb.close()


def _kill_mid_batch(emb: WorkerEmbedder, old_pid: int | None) -> ModelError | None:
    """Embed many documents in a thread and SIGKILL the index worker (a new one, not ``old_pid``) meanwhile."""
    body = " + ".join(f"v{j}" for j in range(60))
    outcome: list[ModelError] = []

    def index() -> None:
        try:
            emb.embed_documents([f"def f{i}(x):\n    return {body}" for i in range(400)])
        except ModelError as exc:
            outcome.append(exc)

    t = threading.Thread(target=index)
    t.start()
    deadline = time.monotonic() + 30
    while emb.pids["index"] in (None, old_pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    pid = emb.pids["index"]
    assert pid is not None and pid != old_pid
    time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    t.join(60)
    return outcome[0] if outcome else None


def test_backoff_doubles_while_the_worker_keeps_dying(default_model_path: Path):
    """No successful call between deaths (a crash loop): 0.5 s, then 1 s; a success resets it."""
    emb = _fresh(default_model_path)
    try:
        old: int | None = None
        for expected_delay in (0.5, 1.0):
            error = _kill_mid_batch(emb, old)
            assert isinstance(error, ModelWorkerError) and "SIGKILL" in str(error)
            assert emb._index.retry_at - time.monotonic() == pytest.approx(expected_delay, abs=0.25)
            old = emb._index.child.pid if emb._index.child else old
            time.sleep(expected_delay + 0.1)
        assert emb.embed_documents(["x = 1"]).shape == (1, emb.info.dimension)
        assert emb._index.delay == worker_mod.BACKOFF_START_S and emb.restarts == 2
    finally:
        emb.close()


def test_a_hung_worker_is_stopped_and_reported(default_model_path: Path, monkeypatch: pytest.MonkeyPatch):
    emb = _fresh(default_model_path)
    try:
        monkeypatch.setattr(worker_mod, "_request_timeout", lambda n: 1.0)
        pid = emb.pids["query"]
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        with pytest.raises(ModelWorkerError, match="did not answer within 1 s"):
            emb.embed_query("x")
        assert _wait_gone(pid)
        time.sleep(worker_mod.BACKOFF_START_S + 0.1)
        assert emb.embed_query("x").shape == (emb.info.dimension,)
    finally:
        emb.close()


def test_an_idle_index_worker_exits_and_comes_back_silently(default_model_path: Path):
    emb = _fresh(default_model_path, index_idle_exit=0.5)
    try:
        emb.embed_documents(["a = 1"])
        pid = emb.pids["index"]
        assert pid is not None and _wait_gone(pid, 5.0)
        assert emb.embed_documents(["b = 2"]).shape == (1, emb.info.dimension)
        assert emb.restarts == 0 and emb.last_error is None
    finally:
        emb.close()


def test_close_leaves_no_processes(default_model_path: Path):
    emb = _fresh(default_model_path)
    emb.embed_query("q")
    emb.embed_documents(["d"])
    pids = [p for p in emb.pids.values() if p]
    assert len(pids) == 2
    emb.close()
    emb.close()  # idempotent
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # already reaped: no zombie left behind
        assert _gone(pid)
    with pytest.raises(ModelError, match="closed"):
        emb.embed_query("q")
    with pytest.raises(ModelError, match="closed"):
        emb.count_tokens("q")


def test_children_exit_when_the_parent_dies_and_print_nothing_on_stdout(default_model_path: Path):
    """A parent killed by SIGKILL: its workers see EOF on stdin and exit. Stdout stays empty throughout."""
    code = (
        "import os, sys\n"
        "from engine.models.worker import WorkerEmbedder\n"
        "from engine.models.worker_main import encode_json\n"
        f"e = WorkerEmbedder({str(default_model_path)!r}, threads=1)\n"
        "e.embed_documents(['x = 1'])\n"
        "e._query.call(encode_json(b'J', {'op': 'stdout_probe', 'text': 'PROBE-FROM-CHILD'}), 10)\n"
        "e.embed_query('q')\n"
        "sys.stderr.write(f\"PIDS {e.pids['query']} {e.pids['index']}\\n\"); sys.stderr.flush()\n"
        "import time; time.sleep(0.5)  # let the stderr forwarder pass the probe lines on\n"
        "os.kill(os.getpid(), 9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=120)
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == -signal.SIGKILL, err[-2000:]
    assert proc.stdout == b""
    assert err.count("PROBE-FROM-CHILD") >= 3  # print, os.write(1) and libc puts all went to stderr
    pids = [int(p) for p in err.split("PIDS ", 1)[1].split()[:2]]
    for pid in pids:
        assert _wait_gone(pid), pid


def test_system_info_comes_from_the_worker(worker: WorkerEmbedder):
    text = worker.system_info()
    assert "CPU" in text and "AVX" in text


def test_stdout_probe_in_process_is_redirected(worker: WorkerEmbedder, capfd: pytest.CaptureFixture[str]):
    worker._query.call(encode_json(b"J", {"op": "stdout_probe", "text": "PROBE-2"}), 10)
    worker.embed_query("after the probe")  # the protocol survived the writes
    time.sleep(0.2)  # let the stderr forwarder log them
    out, _ = capfd.readouterr()
    assert "PROBE-2" not in out


def test_a_query_does_not_wait_for_an_index_batch(default_model_path: Path, llama_embedder):
    """Queries go to their own worker: one answers while the index worker is inside a long batch."""
    emb = _fresh(default_model_path)
    try:
        body = " + ".join(f"v{j}" for j in range(60))
        done = threading.Event()
        t = threading.Thread(
            target=lambda: (emb.embed_documents([f"def g{i}(x):\n    return {body}" for i in range(60)]), done.set())
        )
        t.start()
        while emb.pids["index"] is None and t.is_alive():
            time.sleep(0.02)
        time.sleep(0.2)
        vector = emb.embed_query("parse a configuration file")
        assert not done.is_set()  # the batch (many seconds) is still running: the query did not queue behind it
        assert float(vector @ llama_embedder.embed_query("parse a configuration file")) > 0.9999
        t.join(600)  # nice 10 on a busy machine: slow, but it must finish
        assert done.is_set()
    finally:
        emb.close()


def test_close_during_a_long_batch_does_not_wait_for_it(default_model_path: Path):
    emb = _fresh(default_model_path)
    body = " + ".join(f"v{j}" for j in range(60))
    errors: list[Exception] = []

    def index() -> None:
        try:
            emb.embed_documents([f"def h{i}(x):\n    return {body}" for i in range(400)])
        except ModelError as exc:
            errors.append(exc)

    t = threading.Thread(target=index)
    t.start()
    while emb.pids["index"] is None and t.is_alive():
        time.sleep(0.02)
    pid = emb.pids["index"]
    assert pid is not None
    time.sleep(0.2)
    t0 = time.perf_counter()
    emb.close()
    assert time.perf_counter() - t0 < 10  # the batch alone takes far longer at nice 10
    t.join(30)
    assert not t.is_alive() and errors and "closed" in str(errors[0])
    assert _gone(pid) and emb.last_error is None  # closing is not a crash


def test_the_query_worker_runs_half_the_threads(worker: WorkerEmbedder) -> None:
    """A query's BM25 and look-ups run beside its embedding: the query child leaves them half the cores,
    the index child uses them all (it runs niced, when nobody waits)."""
    assert worker.threads == 2 and worker.query_threads == 1
    worker.embed_query("warm the query child")
    worker.embed_documents(["and start the index child"])

    def threads_of(pid: int | None) -> str:
        assert pid is not None
        argv = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
        return argv[argv.index("--threads") + 1]

    assert threads_of(worker.pids["query"]) == "1"
    assert threads_of(worker.pids["index"]) == "2"


def test_idle_workers_release_their_file_pages_and_answer_the_same(default_model_path: Path) -> None:
    """Before a maintenance child peaks, the model processes give back the mapped model and their
    libraries' code (engine/memory.py); the next query maps back what it touches, same vector."""
    emb = _fresh(default_model_path)
    try:
        before = emb.embed_query("parse the command line")
        pid = emb.pids["query"]
        assert pid
        resident = psutil.Process(pid).memory_info().rss / 2**20
        emb.release_worker_pages()
        released = psutil.Process(pid).memory_info().rss / 2**20
        assert released < resident - 15, (resident, released)  # MiniLM's file alone is 25 MB
        assert emb.pids["query"] == pid  # released, not stopped: no restart on the next query
        np.testing.assert_array_equal(emb.embed_query("parse the command line"), before)
        assert emb.pids["query"] == pid
    finally:
        emb.close()
