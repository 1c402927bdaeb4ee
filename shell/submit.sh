#!/usr/bin/env bash
# Submit the whole method as SLURM jobs chained by dependencies; run it on a login node from the checkout:
#   RUN=runs/qwen7b MODEL=Qwen/Qwen2.5-7B-Instruct TEACHER=openai:gpt-4o BACKEND=vllm GPUS=8 NODES=2 \
#     CPU_PARTITION=cpu GPU_PARTITION=gpu SANDBOX=service shell/submit.sh
#
#   tasks ─► teacher rollout (array of SHARDS) ─► merge ─► sft ─► policy rollouts (4 styles × 5 temperatures,
#   arrays) ─► merge ─► score-potential ─► rl-stage 1 ─► 2 ─► 3 ─► 4 ─► eval of every checkpoint
#
# A stage whose output already exists in RUN is not resubmitted, so running this again after a failure
# continues the pipeline (and every training job passes --resume). Job ids go to RUN/jobs.tsv; logs to RUN/logs/.
# Besides lib.sh's variables (RUN MODEL TEACHER BACKEND GPUS NODES TASKS STEPS SEED R1CI):
#   UNTIL            last stage to submit: tasks | teacher | sft | potential | rl | eval        (default eval)
#   SHARDS           array tasks per rollout                                                     (default 4)
#   NUM_PER_TASK     gen-tasks --num-per-task                                                    (default 200)
#   NUM_STAGES       curriculum stages                                                 (default 4, docs/paper.md)
#   TEMPERATURES     policy-rollout temperatures, 5 × 4 styles = 20 samples per task  (default 0.2 … 1.0)
#   SANDBOX          service (exec-sandbox on a CPU node) | local (a pool inside each job)  (default local)
#   CPU_PARTITION, GPU_PARTITION, SANDBOX_CPUS (default 8), ROLLOUT_CPUS (default 2)
#   GEN_TASKS_ARGS, TEACHER_ARGS, SFT_ARGS, POTENTIAL_ARGS, RL_ARGS, EVAL_ARGS: extra flags per stage
set -euo pipefail
SHELL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export SHELL_DIR
source "$SHELL_DIR/lib.sh"

: "${UNTIL:=eval}"
: "${SHARDS:=4}"
: "${NUM_PER_TASK:=200}"
: "${NUM_STAGES:=4}"
: "${TEMPERATURES:=0.2 0.4 0.6 0.8 1.0}"
: "${SANDBOX:=local}"
: "${SANDBOX_CPUS:=8}"
: "${ROLLOUT_CPUS:=2}"
: "${TEACHER_ARGS:=--keep correct}"
STAGES=(tasks teacher sft potential rl eval)
[[ " ${STAGES[*]} " == *" $UNTIL "* ]] || die "UNTIL=$UNTIL: choose one of ${STAGES[*]}"
[[ $SANDBOX == service || $SANDBOX == local ]] || die "SANDBOX=$SANDBOX: choose service or local"
command -v sbatch >/dev/null || die "sbatch not found: run this on a SLURM login node"

mkdir -p "$RUN/logs"
RUN=$(cd "$RUN" && pwd)
export RUN SEED STEPS TEACHER BACKEND GPUS NODES R1CI TORCHRUN DEEPSPEED

# wanted STAGE: true when STAGE comes no later than UNTIL.
wanted() {
    local s
    for s in "${STAGES[@]}"; do
        [[ $s == "$1" ]] && return 0
        [[ $s == "$UNTIL" ]] && return 1
    done
    return 1
}

# args VAR: splits the extra-flags variable VAR into the array ARGS (word splitting, no globbing).
args() {
    read -r -a ARGS <<<"${!1:-}" || true
}

# submit NAME DEPENDENCY SBATCH_FLAGS... SCRIPT ARGS...: submits, records NAME and the id, prints the id.
# A job whose dependency fails is cancelled (--kill-on-invalid-dep), so a failure never leaves the queue stuck.
submit() {
    local name=$1 dependency=$2
    shift 2
    local pattern=%x-%j
    [[ " $* " == *" --array="* ]] && pattern=%x-%A_%a
    local flags=(--parsable --job-name="r1ci-$name" --output="$RUN/logs/$pattern.log" --kill-on-invalid-dep=yes)
    [[ -n $dependency ]] && flags+=(--dependency="$dependency")
    local id
    id=$(sbatch "${flags[@]}" "$@")
    id=${id%%;*}
    printf '%s\t%s\n' "$name" "$id" >>"$RUN/jobs.tsv"
    log "submitted $name as job $id${dependency:+ ($dependency)}"
    echo "$id"
}

# afterok IDS...: a dependency string on the jobs that were submitted (skipped stages leave empty ids).
afterok() {
    local ids=() id
    for id in "$@"; do
        [[ -n $id ]] && ids+=("$id")
    done
    ((${#ids[@]} > 0)) && (IFS=:; echo "afterok:${ids[*]}") || true
}

# with_sandbox DEPENDENCY: adds "after the sandbox service started" when one is used.
with_sandbox() {
    if [[ -n ${SANDBOX_JOB:-} ]]; then
        echo "${1:+$1,}after:$SANDBOX_JOB"
    else
        echo "$1"
    fi
}

cpu=(${CPU_PARTITION:+--partition=$CPU_PARTITION})
gpu=(${GPU_PARTITION:+--partition=$GPU_PARTITION})
train=("${gpu[@]}" --nodes="$NODES")
# Training jobs take whole GPU nodes: the ranks of a node need its CPUs too (data loading, gloo, offload).
((GPUS > 0)) && train+=(--gpus-per-node="$GPUS" --exclusive)
# Rollouts with a checkpoint (hf/vllm) want a GPU when there are GPUs; reference and openai need only CPUs.
rollout_resources() {
    ROLLOUT=("${cpu[@]}" --cpus-per-task="$ROLLOUT_CPUS")
    case "$1" in
        reference | openai:* | http://* | https://*) ;;
        *) ((GPUS > 0)) && ROLLOUT=("${gpu[@]}" --cpus-per-task="$ROLLOUT_CPUS" --gpus=1) ;;
    esac
    return 0
}
last=

tasks_job=
if [[ ! -s $RUN/tasks.jsonl.zst ]]; then
    args GEN_TASKS_ARGS
    tasks_job=$(submit tasks "" "${cpu[@]}" "$SHELL_DIR/step.sbatch" gen-tasks --split train \
        ${TASKS:+--tasks "$TASKS"} --num-per-task "$NUM_PER_TASK" --seed "$SEED" -o "$RUN/tasks.jsonl.zst" "${ARGS[@]}")
fi
last=$tasks_job
wanted teacher || exit 0

model_job=
if [[ -z ${MODEL:-} ]]; then
    MODEL=$RUN/m0
    if [[ ! -s $MODEL/config.json ]]; then
        model_job=$(submit init-model "" "${cpu[@]}" "$SHELL_DIR/step.sbatch" init-model -o "$MODEL" --seed "$SEED")
    fi
fi
export MODEL

# stop_sandbox: cancels the service once every job submitted after it has ended, however it ended.
stop_sandbox() {
    if [[ -z $last ]]; then
        scancel "$SANDBOX_JOB"
    else
        submit sandbox-stop "afterany:$last" "${cpu[@]}" --wrap="scancel $SANDBOX_JOB" >/dev/null
    fi
}
if [[ $SANDBOX == service ]]; then
    SANDBOX_JOB=$(submit sandbox "" "${cpu[@]}" --cpus-per-task="$SANDBOX_CPUS" "$SHELL_DIR/sandbox.sbatch")
    export SANDBOX_JOB
    trap stop_sandbox EXIT
fi

teacher_job=
if [[ ! -s $RUN/teacher.jsonl.zst ]]; then
    rollout_resources "$TEACHER"
    args TEACHER_ARGS
    array=$(GENERATOR=$TEACHER submit teacher-rollout "$(with_sandbox "$(afterok "$tasks_job")")" "${ROLLOUT[@]}" \
        --array=0-$((SHARDS - 1)) "$SHELL_DIR/rollout.sbatch" "$RUN/tasks.jsonl.zst" "$RUN/teacher.parts" "${ARGS[@]}")
    teacher_job=$(submit teacher-merge "afterok:$array" "${cpu[@]}" "$SHELL_DIR/merge.sbatch" \
        "$RUN/teacher.jsonl.zst" "$RUN/teacher.parts")
    last=$teacher_job
fi
wanted sft || exit 0

sft_job=
if [[ ! -s $RUN/sft/config.json ]]; then
    args SFT_ARGS
    sft_job=$(submit sft "$(afterok "$teacher_job" "$model_job")" "${train[@]}" "$SHELL_DIR/sft.sbatch" \
        "$RUN/teacher.jsonl.zst" "$RUN/sft" "${ARGS[@]}")
    last=$sft_job
fi
wanted potential || exit 0

score_job=
if [[ ! -s $RUN/staged.jsonl.zst ]]; then
    rollout_resources "$RUN/sft"
    args POTENTIAL_ARGS
    # docs/paper.md "Multi-stage curriculum": 20 answers per sample from the SFT model, 4 styles × 5 temperatures.
    arrays=()
    parts=()
    offset=0
    for style in agent text code steer; do
        for temperature in $TEMPERATURES; do
            offset=$((offset + 1))
            dir=$RUN/potential.parts/$style-t$temperature
            parts+=("$dir")
            [[ -n $(compgen -G "$dir/shard-*.jsonl.zst") ]] && continue
            # A distinct seed per (style, temperature), so the 20 samples of a task are independent draws.
            arrays+=("$(GENERATOR=$RUN/sft SEED=$((SEED * 1000 + offset)) submit "potential-$style-t$temperature" \
                "$(with_sandbox "$(afterok "$tasks_job" "$sft_job")")" "${ROLLOUT[@]}" --array=0-$((SHARDS - 1)) \
                "$SHELL_DIR/rollout.sbatch" "$RUN/tasks.jsonl.zst" "$dir" --style "$style" \
                --temperature "$temperature" "${ARGS[@]}")")
        done
    done
    merge_job=$(submit potential-merge "$(afterok "${arrays[@]}")" "${cpu[@]}" "$SHELL_DIR/merge.sbatch" \
        "$RUN/potential.jsonl.zst" "${parts[@]}")
    score_job=$(submit score-potential "afterok:$merge_job" "${cpu[@]}" "$SHELL_DIR/step.sbatch" score-potential \
        "$RUN/potential.jsonl.zst" --min-samples $((4 * $(wc -w <<<"$TEMPERATURES"))) -o "$RUN/staged.jsonl.zst")
    last=$score_job
fi
wanted rl || exit 0

previous=$RUN/sft
previous_job=$sft_job
checkpoints=("$RUN/sft")
declare -A trained=([sft]=$sft_job)
args RL_ARGS
for ((stage = 1; stage <= NUM_STAGES; stage++)); do
    out=$RUN/rl$stage
    checkpoints+=("$out")
    if [[ ! -s $out/config.json ]]; then
        previous_job=$(MODEL=$previous REF_MODEL=$RUN/sft submit "rl$stage" \
            "$(with_sandbox "$(afterok "$score_job" "$previous_job")")" "${train[@]}" "$SHELL_DIR/rl-stage.sbatch" \
            "$stage" "$RUN/staged.jsonl.zst" "$out" "${ARGS[@]}")
        trained[rl$stage]=$previous_job
        last=$previous_job
    else
        previous_job=
    fi
    previous=$out
done
wanted eval || exit 0

test_job=
if [[ ! -s $RUN/test.jsonl.zst ]]; then
    test_job=$(submit test-tasks "" "${cpu[@]}" "$SHELL_DIR/step.sbatch" gen-tasks --split test \
        ${TASKS:+--tasks "$TASKS"} --num-per-task "$NUM_PER_TASK" --seed "$SEED" -o "$RUN/test.jsonl.zst")
fi
args EVAL_ARGS
mkdir -p "$RUN/eval"
eval_jobs=()
rollout_resources "$RUN/sft"
for checkpoint in "${checkpoints[@]}"; do
    name=${checkpoint##*/}
    [[ -s $RUN/eval/$name.jsonl.zst ]] && continue
    # Each checkpoint's evaluation waits for its own training job only (if it was submitted now).
    eval_jobs+=("$(submit "eval-$name" "$(afterok "$test_job" "${trained[$name]:-}")" "${ROLLOUT[@]}" \
        "$SHELL_DIR/step.sbatch" eval "$RUN/test.jsonl.zst" --model "$checkpoint" --backend "$BACKEND" \
        -o "$RUN/eval/$name.jsonl.zst" "${ARGS[@]}")")
done
((${#eval_jobs[@]} > 0)) && last=$(IFS=:; echo "${eval_jobs[*]}")
exit 0
