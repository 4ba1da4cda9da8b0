#!/usr/bin/env bash
# Installs the real producers the preset tests compare spanline's lines
# with (crates/spanline-json/tests/it/producers.rs), pinned (this is the one
# place that knows the pins):
#   structlog 26.1.0 and ecs-logging 2.3.0, from PyPI, into a virtualenv of
#     the project's own, $SPANLINE_REFERENCE_DIR/venv (never the system
#     Python);
#   @elastic/ecs 9.4.0 (Elastic's ECS field definitions as data), from npm,
#     into $SPANLINE_REFERENCE_DIR/npm.
# SPANLINE_REFERENCE_DIR defaults to ${XDG_CACHE_HOME:-~/.cache}/spanline-reference,
# where the tests look too. Nothing is downloaded at test time. Safe to run
# again: it only installs what is missing or at another version.
#
# Needs python3 (with its venv module: Debian's python3-venv), node and npm;
# `bash scripts/test` installs those first, then runs this.
#
#   bash scripts/reference_producers.sh           install what is missing
#   bash scripts/reference_producers.sh --check   exit 0 when all is installed
set -euo pipefail

structlog_version=26.1.0
ecs_logging_version=2.3.0
elastic_ecs_version=9.4.0

dir="${SPANLINE_REFERENCE_DIR:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/spanline-reference}"
venv="$dir/venv"
npm_dir="$dir/npm"

python_ok() {
    "$venv/bin/python" - "$structlog_version" "$ecs_logging_version" 2>/dev/null <<'PY'
import importlib.metadata as m, sys
sys.exit(not (m.version("structlog") == sys.argv[1] and m.version("ecs-logging") == sys.argv[2]))
PY
}

ecs_ok() {
    [ -f "$npm_dir/node_modules/@elastic/ecs/generated/ecs_flat.js" ] &&
        node -e 'process.exit(require(process.argv[1]).version === process.argv[2] ? 0 : 1)' \
            "$npm_dir/node_modules/@elastic/ecs/package.json" "$elastic_ecs_version" 2>/dev/null
}

if [ "${1:-}" = "--check" ]; then
    python_ok && ecs_ok
    exit
fi

mkdir -p "$dir"

if ! python_ok; then
    # A venv whose interpreter no longer runs (its base Python was removed
    # or upgraded) is made anew.
    if ! "$venv/bin/python" -c '' 2>/dev/null; then
        if ! python3 -m venv --clear "$venv"; then
            echo "cannot make a Python virtualenv at $venv: install python3-venv" \
                "(apt-get install python3-venv) and rerun" >&2
            exit 1
        fi
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "structlog==$structlog_version" "ecs-logging==$ecs_logging_version"
fi
"$venv/bin/python" -c 'import sys, structlog, ecs_logging; print("structlog", structlog.__version__, "/ ecs-logging", ecs_logging.__version__, "in", sys.prefix)'

if ! ecs_ok; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "npm is needed to install @elastic/ecs: install npm (apt-get install npm) and rerun" >&2
        exit 1
    fi
    mkdir -p "$npm_dir"
    npm install --silent --no-audit --no-fund --prefix "$npm_dir" \
        "@elastic/ecs@$elastic_ecs_version" >/dev/null
fi
node -e 'console.log("@elastic/ecs", require(process.argv[1]).version, "in", process.argv[2])' \
    "$npm_dir/node_modules/@elastic/ecs/package.json" "$npm_dir"
