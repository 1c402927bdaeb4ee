# shell/lib.sh — sourced by every SLURM script in shell/: the run's variables and the glue between SLURM and r1ci.
#
# Real runs change only variables (the Makefile's names), set in the environment or with sbatch --export:
#   RUN      run directory, shared by all nodes                              (default runs/slurm)
#   MODEL    model to start from: a checkpoint directory or hub name         (default: $RUN/m0 from init-model)
#   TEACHER  reference | openai:NAME | http(s)://HOST:PORT/v1 (a vllm serve URL; TEACHER_MODEL names the served
#            model) | a checkpoint directory generated with $BACKEND      (default reference)
#   BACKEND  rollout backend for checkpoints: hf (CPU, tests) or vllm (GPU)  (default hf)
#   GPUS     GPUs per node of a training job; 0 = CPU                        (default 0)
#   NODES    nodes of a training job                                         (default 1)
#   TASKS    gen-tasks --tasks (names or globs; empty = all)
#   STEPS    rl-stage --steps per stage                                      (default 150, docs/paper.md)
#   R1CI     the r1ci executable (default: r1ci on PATH); TORCHRUN likewise (default torchrun)
# Everything here is glue: which flags to pass, where files go. What the flags do lives in the commands.
set -euo pipefail

: "${RUN:=runs/slurm}"
: "${TEACHER:=reference}"
: "${BACKEND:=hf}"
: "${GPUS:=0}"
: "${NODES:=1}"
: "${TASKS:=}"
: "${STEPS:=150}"
: "${SEED:=0}"
: "${R1CI:=r1ci}"
: "${TORCHRUN:=torchrun}"
: "${SHELL_DIR:=${SLURM_SUBMIT_DIR:-.}/shell}"
# DeepSpeed ZeRO config for training jobs; set DEEPSPEED= (empty) for the plain torch engine (one process).
: "${DEEPSPEED=$SHELL_DIR/zero2.json}"
# How long a client waits for the sandbox service to come up (it may queue behind other jobs).
: "${SANDBOX_WAIT_S:=600}"

# Under SLURM $0 is a copy named slurm_script: name the job instead.
die() {
    echo "${SLURM_JOB_NAME:-${0##*/}}: $*" >&2
    exit 1
}

log() {
    echo "[$(date +%H:%M:%S)] ${SLURM_JOB_NAME:-${0##*/}}: $*" >&2
}

# generator_flags SPEC: sets GENERATOR_FLAGS, the rollout flags that generate with SPEC (same syntax as TEACHER).
generator_flags() {
    local spec=$1
    case "$spec" in
        reference)
            GENERATOR_FLAGS=(--backend reference) ;;
        openai:*)
            GENERATOR_FLAGS=(--backend openai --model "${spec#openai:}"
                             --base-url "${OPENAI_BASE_URL:-https://api.openai.com/v1}") ;;
        http://* | https://*)
            [[ -n ${TEACHER_MODEL:-} ]] || die "TEACHER=$spec needs TEACHER_MODEL, the model name the server serves"
            GENERATOR_FLAGS=(--backend openai --model "$TEACHER_MODEL" --base-url "$spec") ;;
        "")
            die "empty generator: set TEACHER or GENERATOR" ;;
        *)
            GENERATOR_FLAGS=(--backend "$BACKEND" --model "$spec") ;;
    esac
}

# array_shard: prints this array task's shard as I/N (what rollout --shard takes); 0/1 outside an array job.
array_shard() {
    if [[ -z ${SLURM_ARRAY_TASK_ID:-} ]]; then
        echo "0/1"
        return
    fi
    # --shard selects input positions p with p % N == I, so the array must be a dense range (any start).
    [[ ${SLURM_ARRAY_TASK_STEP:-1} == 1 ]] || die "use a dense --array range (step 1), got step $SLURM_ARRAY_TASK_STEP"
    echo "$((SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN))/$SLURM_ARRAY_TASK_COUNT"
}

# sandbox_flags: reaches the exec-sandbox service of job $SANDBOX_JOB (its files in SANDBOX_DIR): sets
# SANDBOX_FLAGS (--sandbox HOST:PORT --sandbox-token-file FILE, taken by rollout, eval and rl-stage alike); the
# token itself never appears on a command line. Without SANDBOX_JOB the commands run a local sandbox pool and
# SANDBOX_FLAGS stays empty.
sandbox_flags() {
    SANDBOX_FLAGS=()
    [[ -n ${SANDBOX_JOB:-} ]] || return 0
    local dir=${SANDBOX_DIR:-$RUN/sandbox} waited=0
    local address_file=$dir/$SANDBOX_JOB.address
    # The service writes its address only once it accepts connections.
    until [[ -s $address_file ]]; do
        ((waited < SANDBOX_WAIT_S)) ||
            die "no sandbox service after ${SANDBOX_WAIT_S}s ($address_file missing): is job $SANDBOX_JOB running?"
        sleep 2
        waited=$((waited + 2))
    done
    SANDBOX_FLAGS=(--sandbox "$(<"$address_file")" --sandbox-token-file "$dir/token")
}

# launch_distributed R1CI_ARGS...: runs `r1ci R1CI_ARGS...` on every node of this job, NPROC processes per node
# (default GPUS, 1 on CPU), through srun + torchrun's c10d rendezvous on the first node. torchrun sets RANK,
# LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT, which the sft/rl-stage engines read.
launch_distributed() {
    local nproc=${NPROC:-$((GPUS > 0 ? GPUS : 1))}
    local nodes=${SLURM_JOB_NUM_NODES:-1}
    local hosts
    mapfile -t hosts < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
    ((${#hosts[@]} > 0)) || die "cannot list this job's nodes (SLURM_JOB_NODELIST=${SLURM_JOB_NODELIST:-unset})"
    # One port per job, so two training jobs sharing a node do not collide.
    local port=${MASTER_PORT:-$((29500 + ${SLURM_JOB_ID:-0} % 2000))}
    log "$nodes node(s) x $nproc process(es), rendezvous ${hosts[0]}:$port: r1ci $*"
    # --whole: the step gets every CPU and GPU the job holds on its nodes (a step's default is one CPU per task,
    # which would pin all ranks of a node to one core).
    srun --whole --nodes="$nodes" --ntasks="$nodes" --ntasks-per-node=1 --kill-on-bad-exit=1 \
        "$TORCHRUN" --nnodes="$nodes" --nproc-per-node="$nproc" \
        --rdzv-id="${SLURM_JOB_ID:-0}" --rdzv-backend=c10d --rdzv-endpoint="${hosts[0]}:$port" \
        --no-python "$R1CI" "$@"
}

# deepspeed_flags: sets DEEPSPEED_FLAGS from DEEPSPEED (empty = the torch engine).
deepspeed_flags() {
    DEEPSPEED_FLAGS=()
    if [[ -n $DEEPSPEED ]]; then
        [[ -f $DEEPSPEED ]] || die "DEEPSPEED=$DEEPSPEED: no such file"
        DEEPSPEED_FLAGS=(--deepspeed "$DEEPSPEED")
    fi
}
