"""Real servers on loopback for the remote-embedding and shared-index tests.

- ``LlamaServer``: llama-cpp-python's own OpenAI-compatible server (``python -m llama_cpp.server``)
  serving a GGUF model; it can be killed and started again on the same port.
- ``MotoServer``: moto's S3-compatible server (``python -m moto.server``).
- ``narrow_model``: the default model cut to half its width (dimension 192), a real GGUF that
  llama.cpp serves: "another model with another dimension" without any download.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from engine.models.backend import backend_path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server at {url} not ready after {timeout}s: {log.read_text()[-2000:]}")


class LlamaServer:
    def __init__(self, model: Path, log_dir: Path, *, alias: str = "all-MiniLM-L6-v2", port: int = 0) -> None:
        self.model = model
        self.alias = alias
        self.port = port or free_port()
        self.log = log_dir / f"llama-server-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, model: Path | None = None, alias: str | None = None, extra: tuple[str, ...] = ()) -> LlamaServer:
        self.model = model or self.model
        self.alias = alias or self.alias
        cmd = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--model_alias", self.alias,
            "--embedding", "true", "--host", "127.0.0.1", "--port", str(self.port),
            "--n_ctx", "512", "--n_batch", "512", "--n_ubatch", "512", "--flash_attn", "true",
            "--n_threads", "1", "--n_threads_batch", "1", *extra,
        ]  # fmt: skip
        # A dispatch build has no CPU backend linked in, and llama-cpp-python's server loads none by
        # itself: ggml loads the one named by GGML_BACKEND_PATH (engine/models/backend.py).
        env = dict(os.environ)
        backend = backend_path()
        if backend is not None:
            env["GGML_BACKEND_PATH"] = backend
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        handle.close()
        _wait_http(f"{self.url}/v1/models", self.proc, self.log)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None


class MotoServer:
    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.log = log_dir / f"moto-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        handle.close()
        _wait_http(f"{self.endpoint}/moto-api/", self.proc, self.log, timeout=60)
        return self

    def create_bucket(self, name: str) -> None:
        import boto3  # a dependency of moto

        env = self.environment()
        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_REGION"],
        ).create_bucket(Bucket=name)

    def environment(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


def narrow_model(out: Path) -> Path:
    """all-MiniLM-L6-v2 with every hidden width halved (384 -> 192, 6 heads of 32): a valid BERT GGUF."""
    from dataclasses import replace

    from engine.models.convert import convert, load_source

    source = load_source()
    hidden, inner = int(source.config["hidden_size"]), int(source.config["intermediate_size"])
    tensors = {}
    for name, array in source.tensors.items():
        index = tuple(
            slice(0, n // 2) if n in (hidden, inner) and not name.endswith("position_ids") else slice(None)
            for n in array.shape
        )
        tensors[name] = np.ascontiguousarray(array[index])
    config = dict(source.config)
    config.update(
        hidden_size=hidden // 2,
        intermediate_size=inner // 2,
        num_attention_heads=int(config["num_attention_heads"]) // 2,
    )
    return convert(out, outtype="f32", source=replace(source, config=config, tensors=tensors))


def make_corpus(root: Path, files: int = 100) -> list[str]:
    """``files`` small Python modules with distinct, meaningful functions; returns their paths."""
    topics = [
        ("parse", "configuration file", "settings"), ("render", "html template", "page"),
        ("encode", "base64 payload", "data"), ("resize", "thumbnail image", "pixels"),
        ("hash", "user password", "secret"), ("sort", "invoice list", "items"),
        ("retry", "network request", "attempts"), ("compress", "log archive", "chunks"),
        ("validate", "email address", "address"), ("schedule", "cron job", "when"),
    ]  # fmt: skip
    paths = []
    for i in range(files):
        verb, noun, arg = topics[i % len(topics)]
        slug = noun.replace(" ", "_")
        rel = f"pkg{i // 25}/mod_{i:03d}_{verb}_{slug}.py"
        body = (
            f'"""Module {i}: helpers to {verb} a {noun}."""\n\n\n'
            f"def {verb}_{slug}_{i}({arg}, limit={i + 1}):\n"
            f'    """{verb.capitalize()} the {noun} given as {arg}, at most {i + 1} times."""\n'
            f"    result = []\n    for step in range(limit):\n        result.append(({arg}, step))\n"
            f"    return result\n\n\n"
            f"class {verb.capitalize()}{slug.title().replace('_', '')}Helper{i}:\n"
            f"    def run(self, {arg}):\n        return {verb}_{slug}_{i}({arg})\n"
        )
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
        paths.append(rel)
    return paths


def env_json(env: dict[str, str]) -> str:
    return json.dumps(env)


def set_env(env: dict[str, str]) -> dict[str, str | None]:
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    return old


def restore_env(old: dict[str, str | None]) -> None:
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
