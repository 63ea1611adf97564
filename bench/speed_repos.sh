#!/usr/bin/env bash
# The BENCHMARKS.md "speed" five-repository table: time to first hybrid result and to every file
# searchable over real LSP (bench/bench_lsp_first_result.py), and time to complete for the small ones.
# Usage (heavy: hold the lock): flock /tmp/semcode-heavy.lock bash bench/speed_repos.sh REPOS_DIR OUT.jsonl
set -u
here="$(cd "$(dirname "$0")/.." && pwd)"
repos="$1"; out="$2"
py="${PYTHON:-/work/main/.venv/bin/python}"
run() {  # name query [--complete]
  local name="$1" query="$2"; shift 2
  echo "== $name $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  timeout 900 "$py" "$here/bench/bench_lsp_first_result.py" "$repos/$name" --query "$query" --label "$name" \
    --json-out "$out" "$@" 2>&1 | grep -v '^  note'
}
run cobra "register a subcommand and parse its flags" --complete
run click "parse command line options and arguments" --complete
run ripgrep "search a file for a regular expression and print matching lines"
run django-pkg "compile the SQL query for a join"
run spring-framework "resolve the bean definition and inject dependencies" --timeout 900
