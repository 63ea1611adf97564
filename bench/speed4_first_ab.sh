#!/usr/bin/env bash
# First hybrid result over LSP, before (BASE: a checkout of older code) vs this tree, alternated, 3 rounds.
# Each side runs from its own directory (python -m lsp_server imports from the working directory).
# Heavy (~2 min): flock /tmp/semcode-heavy.lock bash bench/speed4_first_ab.sh BASE REPO OUT.jsonl
set -u
here="$(cd "$(dirname "$0")/.." && pwd)"
base="$1"; repo="$2"; out="$3"
py="${PYTHON:-/work/main/.venv/bin/python}"
cp "$here/bench/bench_lsp_first_result.py" "$base/bench/"
for i in 1 2 3; do
  for tree in "$base" "$here"; do
    cd "$tree"
    echo "== first $tree run $i $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
    timeout 120 "$py" "$tree/bench/bench_lsp_first_result.py" "$repo" --query "compile the SQL query for a join" \
      --label "$(basename "$tree") run $i" --json-out "$out" 2>&1 | grep -v '^  note'
  done
done
