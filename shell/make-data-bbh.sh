#!/usr/bin/env bash
# Build BBH-style JSON for the seven knowledge-bound BBH subtasks from the BIG-bench source tasks.
# Usage: shell/make-data-bbh.sh [OUT_DIR=data/bbh] [CACHE_DIR=data/cache/bigbench]
# Needs PyPI once (pip download of the bigbench 1.0.0 sdist, ~360 MB, Apache-2.0); later runs reuse the cache.
set -euo pipefail
out_dir="${1:-data/bbh}"
cache_dir="${2:-data/cache/bigbench}"
python="${PYTHON:-.venv/bin/python}"
archive="$cache_dir/bigbench-1.0.0.tar.gz"
if [[ ! -f "$archive" ]]; then
    mkdir -p "$cache_dir"
    "$python" -m pip download --no-deps bigbench==1.0.0 -d "$cache_dir" >&2
fi
"$python" -m r1ci_cli.tasks.bbh._bigbench_build "$archive" -o "$out_dir"
