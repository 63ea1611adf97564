#!/usr/bin/env bash
# Serena integration test: drives semcode's language server through Serena's solidlsp (PyPI serena-agent),
# installed in its own venv because serena-agent pins versions that may conflict with the project's.
#
#   scripts/serena-test.sh [pytest args...]
#
# Needs the project venv (.venv, with semcode installed) to exist. Environment:
#   SERENA_VENV         the Serena venv (default .ci-cache/serena-venv; created when missing)
#   SERENA_PYTHON       Python (>= 3.11) used to create it (default python3)
#   SEMCODE_SERVER_CMD  the server command (default "<repo>/.venv/bin/python -m lsp_server")
#   SERENA_TEST_TIMEOUT seconds before the whole run is killed (default 300)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SERENA_VENV:-$ROOT/.ci-cache/serena-venv}"
PYTHON="${SERENA_PYTHON:-python3}"
CONSTRAINTS="$ROOT/tests/serena/constraints.txt"
REQUIREMENTS=("serena-agent==2.1.0" "pytest==9.2.0")

if [ ! -x "$ROOT/.venv/bin/python" ] && [ -z "${SEMCODE_SERVER_CMD:-}" ]; then
    echo "serena-test: $ROOT/.venv is missing (create the project venv first, or set SEMCODE_SERVER_CMD)" >&2
    exit 2
fi

# (Re)install only when the requirements changed since the last install, or the venv is broken.
want="$(printf '%s\n' "${REQUIREMENTS[@]}" | cat - "$CONSTRAINTS" | sha256sum | cut -d' ' -f1)"
stamp="$VENV/.semcode-serena-requirements"
if [ ! -x "$VENV/bin/python" ]; then
    echo "serena-test: creating $VENV" >&2
    "$PYTHON" -m venv "$VENV"
fi
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ] \
        || ! "$VENV/bin/python" -c "import solidlsp, pytest" 2>/dev/null; then
    echo "serena-test: installing ${REQUIREMENTS[*]} into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c "$CONSTRAINTS" "${REQUIREMENTS[@]}"
    echo "$want" > "$stamp"
fi

export SEMCODE_SERVER_CMD="${SEMCODE_SERVER_CMD:-$ROOT/.venv/bin/python -m lsp_server}"
cd "$ROOT"
exec timeout --kill-after=15 "${SERENA_TEST_TIMEOUT:-300}" \
    "$VENV/bin/python" -m pytest -c tests/serena/pytest.ini --rootdir tests/serena tests/serena "$@"
