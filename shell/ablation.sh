#!/usr/bin/env bash
# shell/ablation.sh OUT.md — the curriculum ablation (`make ablation`): for each seed in ABLATION_SEEDS, one whole
# tiny run (runs/ablation-s<seed>/: tasks, SFT, potential, 4 curriculum stages) plus flat GRPO from the same SFT
# model on every group for the same total steps; then a markdown table of held-out accuracy to OUT.md.
# Every step is a make file target, so running it again resumes. Extra make variables pass through the
# environment (e.g. STEPS=10).
set -euo pipefail
out=${1:?usage: shell/ablation.sh OUT.md}
: "${ABLATION_SEEDS:=0 1 2}"
: "${MAKE:=make}"
: "${PYTHON:=.venv/bin/python}"
files=()
for seed in $ABLATION_SEEDS; do
    run=ablation-s$seed
    start=$(date +%s)
    $MAKE --no-print-directory RUN="$run" SEED="$seed" \
        "runs/$run/eval-base.jsonl.zst" "runs/$run/eval-sft.jsonl.zst" \
        "runs/$run/eval-rl1.jsonl.zst" "runs/$run/eval-rl2.jsonl.zst" "runs/$run/eval-rl3.jsonl.zst" \
        "runs/$run/eval-rl4.jsonl.zst" "runs/$run/eval-flat.jsonl.zst"
    echo "[$(date +%H:%M:%S)] ablation: seed $seed done in $(( $(date +%s) - start )) s" >&2
    files+=("runs/$run")
done
# `make -n ablation` runs this script with n in MAKEFLAGS: the runs above were only printed, so no table.
if [[ ${MAKEFLAGS:-} =~ ^[a-zA-Z]*n ]]; then exit 0; fi
"$PYTHON" shell/ablation_table.py "${files[@]}" > "$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
