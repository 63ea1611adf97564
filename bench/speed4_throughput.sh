#!/usr/bin/env bash
# BENCHMARKS.md "speed (session 4)": sgemm ceiling and raw settings (packing scope, build, format, waiting
# policy), pipeline vs raw with the whole-write-batch plan, and throughput beside two busy loops.
# Heavy (~10 min): flock /tmp/semcode-heavy.lock bash bench/speed4_throughput.sh [OUT_PREFIX]
set -u
here="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-/work/main/.venv/bin/python}"
out="${1:-/tmp/speed4}"
export PYTHONPATH="$here"
stamp() { echo "== $1 $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"; }
stamp throughput; timeout 420 "$py" "$here/bench/bench_throughput.py" --sweep s4 --texts 250 --json-out "$out-throughput.jsonl"
stamp "pipeline vs raw"; timeout 240 "$py" "$here/bench/bench_embed.py" --chunks 512 --rounds 2 | tail -9
stamp contention; timeout 240 "$py" "$here/bench/bench_contention.py" --texts 150 --rounds 2 --nice 0
stamp end
