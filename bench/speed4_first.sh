#!/usr/bin/env bash
# BENCHMARKS.md "speed (session 4)": first hybrid result over LSP on Django's 1,081-file package, N runs.
# Heavy (~1 min a run): flock /tmp/semcode-heavy.lock bash bench/speed4_first.sh REPO OUT.jsonl [RUNS] [LABEL]
set -u
here="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-/work/main/.venv/bin/python}"
repo="$1"; out="$2"; runs="${3:-2}"; label="${4:-}"
for i in $(seq "$runs"); do
  echo "== run $i $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  timeout 300 "$py" "$here/bench/bench_lsp_first_result.py" "$repo" --query "compile the SQL query for a join" \
    --label "$label run $i" --json-out "$out" ${SERVER_PYTHON:+--python "$SERVER_PYTHON"} 2>&1 | grep -v '^  note'
done
