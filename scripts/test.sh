#!/usr/bin/env bash
# Set up everything and run every test suite: lint (ruff, import layers, mypy as [tool.mypy] in pyproject.toml
# says), Python (engine, LSP, MCP), a fresh `pip install` used offline, Serena's solidlsp, Neovim (headless
# nvim 0.11) and VS Code (code-server in headless Chromium).
#   bash scripts/test.sh              # all suites
#   SUITES="python neovim" bash scripts/test.sh
set -uo pipefail
cd "$(dirname "$0")/.."
SUITES="${SUITES:-lint python install serena neovim vscode}"

bash scripts/setup.sh --dev || exit 1
export SEMCODE_SERVER="$PWD/.venv/bin/semcode"
export SEMCODE_SERVER_CMD="$PWD/.venv/bin/python -m lsp_server"

passed=0
failed=0
failed_names=()
run_suite() {
  local name="$1"; shift
  echo "=== suite: $name" >&2
  local started=$SECONDS
  if "$@"; then
    passed=$((passed + 1))
    echo "=== suite $name: ok in $((SECONDS - started))s" >&2
  else
    failed=$((failed + 1))
    failed_names+=("$name")
    echo "=== suite $name: FAILED in $((SECONDS - started))s" >&2
  fi
}

for suite in $SUITES; do
  case "$suite" in
    lint) run_suite lint bash -c '.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/python scripts/check_imports.py && .venv/bin/mypy' ;;
    python) run_suite python .venv/bin/pytest -q -p no:cacheprovider ;;
    install) run_suite install bash scripts/install-test.sh ;;
    serena) run_suite serena bash scripts/serena-test.sh ;;
    neovim) run_suite neovim bash clients/neovim/scripts/ci.sh ;;
    vscode) run_suite vscode bash clients/vscode/scripts/ci.sh ;;
    *) echo "unknown suite: $suite" >&2; failed=$((failed + 1)) ;;
  esac
done

[[ $failed -gt 0 ]] && echo "failed suites: ${failed_names[*]}" >&2
echo "suites: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
