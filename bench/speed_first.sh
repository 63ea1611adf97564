#!/usr/bin/env bash
# Before/after of the first hybrid result over LSP on ~1,000-file folders, runs alternated.
# BASE is a checkout of the code before (git archive 8991cf6). Heavy: hold the lock.
set -u
here="$(cd "$(dirname "$0")/.." && pwd)"
base="$1"; repos="$2"; out="$3"
py="${PYTHON:-/work/main/.venv/bin/python}"
cp "$here/bench/bench_lsp_first_result.py" "$base/bench/"
for i in 1 2; do
  for tree in "$base" "$here"; do
    for name in django-pkg django-tests; do
      echo "== $tree $name run $i $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
      timeout 300 "$py" "$tree/bench/bench_lsp_first_result.py" "$repos/$name" --query "compile the SQL query for a join" \
        --label "$(basename "$tree") $name run $i" --json-out "$out" 2>&1 | grep -v '^  note'
    done
  done
done
