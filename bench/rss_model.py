"""RSS of one LlamaEmbedder process after 30 queries or after embedding N stdlib functions (flops9, session 9).

python bench/rss_model.py MODEL.gguf queries|docs [N]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench_embed import stdlib_functions  # noqa: E402

from engine.models.llama import LlamaEmbedder  # noqa: E402


def status_mb() -> dict[str, int]:
    wanted = ("VmRSS", "VmHWM", "RssAnon", "RssFile")
    lines = Path("/proc/self/status").read_text().splitlines()
    return {k: int(v.split()[0]) // 1024 for k, v in (line.split(":", 1) for line in lines) if k in wanted}


def main() -> None:
    embedder = LlamaEmbedder(sys.argv[1], threads=2)
    embedder._embed_texts(["warm up"])
    loaded = status_mb()
    if sys.argv[2] == "docs":
        embedder.embed_documents(stdlib_functions(int(sys.argv[3])))
    else:
        for query in ["parse a date string", "open a socket and retry", "def f(x): return x"] * 10:
            embedder.embed_query(query)
    print(Path(sys.argv[1]).name, sys.argv[2], "after load", loaded, "after", status_mb())


if __name__ == "__main__":
    main()
