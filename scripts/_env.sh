# Sourced by the other scripts: makes sure .venv holds the project with its dev tools and,
# when the sourcing script sets need_node=1, node_modules the pinned JavaScript tools
# (package-lock.json); each is reinstalled only when its manifest changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=".venv/.stamp-$(cat pyproject.toml | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
    rm -f .venv/.stamp-*
    touch "$stamp"
fi
if [ "${need_node:-0}" = "1" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "npm (Node.js 20) is needed for the pinned JavaScript tools; install Node.js" >&2
        exit 1
    fi
    nstamp="node_modules/.stamp-$(cat package-lock.json | sha1sum | cut -c1-12)"
    if [ ! -f "$nstamp" ]; then
        npm ci --no-audit --no-fund --loglevel=error >/dev/null
        touch "$nstamp"
    fi
fi
