#!/usr/bin/env bash
# The BENCHMARKS.md "speed" throughput figures: sgemm ceiling and raw settings, pipeline vs raw (packing
# on and off), and throughput beside busy loops. Heavy: flock /tmp/semcode-heavy.lock bash bench/speed_throughput.sh
set -u
here="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-/work/main/.venv/bin/python}"
export PYTHONPATH="$here"
stamp() { echo "== $1 $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"; }
stamp throughput; timeout 600 "$py" "$here/bench/bench_throughput.py" --sweep speed --texts 200 --json-out /tmp/speed-throughput.jsonl
stamp "pipeline vs raw, packing on"; timeout 300 "$py" "$here/bench/bench_embed.py" --chunks 300 | tail -6
stamp "pipeline vs raw, packing off"; SEMCODE_PACK=0 timeout 300 "$py" "$here/bench/bench_embed.py" --chunks 300 | tail -6
stamp contention; timeout 300 "$py" "$here/bench/bench_contention.py" --texts 150 --rounds 1
stamp end
