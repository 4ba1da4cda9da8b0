#!/usr/bin/env bash
# Installs the real producers the preset tests compare spanline's lines
# with (crates/spanline-json/tests/it/producers.rs), pinned:
#   structlog 26.1.0 and ecs-logging 2.3.0, from PyPI;
#   @elastic/ecs 9.4.0 (Elastic's ECS field definitions as data), from npm,
#   into $SPANLINE_REFERENCE_DIR (default ~/.cache/spanline-reference).
# Nothing is downloaded at test time. Safe to run again.
set -euo pipefail

dir="${SPANLINE_REFERENCE_DIR:-${HOME:-/root}/.cache/spanline-reference}"
mkdir -p "$dir"

wanted='import importlib.metadata as m, sys; sys.exit(not (m.version("structlog") == "26.1.0" and m.version("ecs-logging") == "2.3.0"))'
if ! python3 -c "$wanted" 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check "structlog==26.1.0" "ecs-logging==2.3.0"
fi
python3 -c 'import structlog, ecs_logging; print("structlog", structlog.__version__, "/ ecs-logging", ecs_logging.__version__)'

if [ ! -f "$dir/node_modules/@elastic/ecs/generated/ecs_flat.js" ]; then
    npm install --silent --no-audit --no-fund --prefix "$dir" "@elastic/ecs@9.4.0" >/dev/null
fi
node -e 'console.log("@elastic/ecs", require(process.argv[1] + "/node_modules/@elastic/ecs/package.json").version)' "$dir"
