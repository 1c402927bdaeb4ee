#!/usr/bin/env bash
# shell/ablation.sh OUT.md — the curriculum ablation (`make ablation`).
#
# Every seed starts from the same SFT model and the same potential-scored pool: those of the base run
# ABLATION_BASE (default tiny, the `make all` run; built here if missing). For each seed in ABLATION_SEEDS,
# runs/ablation-s<seed>/ links the base run's tasks, models and scores, then trains the 4 curriculum stages
# (rl1..rl4), flat GRPO on every group for the same total steps, and the online arm (rl1, then online2..online4:
# each stage regroups the groups not yet reached by the running pass rates of the stage before) with that seed,
# and evaluates each on the held-out tasks. So the seeds measure the variance of GRPO itself (sampling, batch
# order), and the arms differ only in the order of the instances. A markdown table of held-out accuracy goes
# to OUT.md.
# Every step is a make file target, so running it again resumes. Extra make variables pass through the
# environment (e.g. STEPS=10).
set -euo pipefail
out=${1:?usage: shell/ablation.sh OUT.md}
: "${ABLATION_SEEDS:=0 1 2}"
: "${ABLATION_BASE:=tiny}"
: "${MAKE:=make}"
: "${PYTHON:=.venv/bin/python}"
base=runs/$ABLATION_BASE
shared=(tasks-sft.jsonl.zst tasks-rl.jsonl.zst tasks-eval.jsonl.zst m0 teacher.jsonl.zst sft potential
        staged.jsonl.zst eval-base.jsonl.zst eval-sft.jsonl.zst)
$MAKE --no-print-directory RUN="$ABLATION_BASE" "$base/staged.jsonl.zst" "$base/eval-base.jsonl.zst" \
    "$base/eval-sft.jsonl.zst"
dry=0
# `make -n ablation` runs this script with n in MAKEFLAGS: print the steps, link and train nothing.
if [[ ${MAKEFLAGS:-} =~ ^[a-zA-Z]*n ]]; then dry=1; fi
files=()
for seed in $ABLATION_SEEDS; do
    run=ablation-s$seed
    start=$(date +%s)
    if [[ $dry == 0 ]]; then
        mkdir -p "runs/$run"
        for name in "${shared[@]}"; do
            [[ -e $base/$name ]] && ln -sfn "../$ABLATION_BASE/$name" "runs/$run/$name"
        done
    fi
    $MAKE --no-print-directory RUN="$run" SEED="$seed" \
        "runs/$run/eval-rl1.jsonl.zst" "runs/$run/eval-rl2.jsonl.zst" "runs/$run/eval-rl3.jsonl.zst" \
        "runs/$run/eval-rl4.jsonl.zst" "runs/$run/eval-flat.jsonl.zst" "runs/$run/eval-online4.jsonl.zst"
    echo "[$(date +%H:%M:%S)] ablation: seed $seed done in $(( $(date +%s) - start )) s" >&2
    files+=("runs/$run")
done
if [[ $dry == 1 ]]; then exit 0; fi
"$PYTHON" shell/ablation_table.py "${files[@]}" > "$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
