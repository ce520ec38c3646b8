# Sourced by the other scripts: makes sure .venv holds the project with its dev tools and,
# when the sourcing script sets need_node=1, node_modules the pinned JavaScript tools
# (package-lock.json); each is reinstalled only when its manifest changed. With
# need_chromium=1 it also makes sure Debian's chromium is at /usr/bin/chromium (the diagram
# tests render BPMN in it through Playwright; Playwright's own browsers are never downloaded).
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
emoji_font=/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
if [ "${need_chromium:-0}" = "1" ] && { [ ! -x /usr/bin/chromium ] || [ ! -f "$emoji_font" ]; }; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing Debian's chromium and fonts (the diagram and UI tests render in it)" >&2
        export DEBIAN_FRONTEND=noninteractive
        # fonts-liberation: Arial's metrics, which bpmn-js lays its labels out for;
        # fonts-noto-color-emoji: the icons of Mermaid diagrams (envelope, clock, bolt, ...)
        install_chromium() {
            apt-get install -y -qq --no-install-recommends chromium fonts-liberation \
                fonts-noto-color-emoji
        }
        # an image without package lists cannot install anything: update them first
        install_chromium >/dev/null 2>&1 || { apt-get update -qq && install_chromium >/dev/null; }
    fi
    if [ ! -x /usr/bin/chromium ]; then
        echo "/usr/bin/chromium is needed: the diagram tests render BPMN in headless Chromium;" \
            "install Debian's package (sudo apt-get install chromium)" >&2
        exit 1
    fi
fi
