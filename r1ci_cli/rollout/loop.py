"""The batched multi-turn rollout loop: generate a turn, run its code in the sandbox, append the result, repeat.

Contract of ``rollout(tasks, generator, sandbox, opts)``:

* Every task yields ``opts.samples`` trajectories with stable ids ``{task_id}/{style}/t{T}/s{k}``
  (``records.trajectory_id``); ids in ``skip`` are not rolled out (``--resume``). Trajectories come out in
  input order (task, then sample): a finished one is held back until every earlier one is out (with
  ``ordered=False`` it comes out at once). When an exception stops the loop, the finished ones held back
  come out before it propagates.
* A generator with ``watch`` (``base.Generator``; the reference teacher) gets the task stream and the sandbox
  first and the loop uses what it returns; requests carry only the conversation.
* Scheduling (``cohorts``): up to ``max_in_flight`` trajectories are active, split into a fixed number of
  cohorts by slot. Cohorts take turns: a cohort first collects the results of the code it submitted on its
  previous visit, then generates one turn for all its ready members in a single batched call and submits
  their code to the pool without waiting. So one cohort's code runs in parallel while the other cohorts
  generate, and every batch's membership is fixed by slot, which keeps hf/CPU runs reproducible (same seed
  → same trajectories). With ``cohorts=1`` the loop is strictly round-based.
* Token-in/token-out: for token backends the context of every call is prompt ids + the ids of every turn
  so far; model ids come from the backend as sampled, observation ids from ``encode_text`` once, when
  appended. Decoded text is never re-tokenised.
* A turn ends at a closed code fence or the end of the model's message (``interaction.find_stop``; with
  ``stop_at_answer`` at an answer span too). The verdict reads the last ``<<<…>>>`` span of everything the
  model wrote, so a corrected draft is graded as corrected.
* Limits and finish reasons: at most ``max_code_calls`` executions (a block written after that ends the
  trajectory with ``max_calls`` unexecuted); ``max_new_tokens`` per turn and ``max_total_tokens`` over all
  model turns (``max_tokens``); a context that no longer fits the model (a backend's ``context`` completion,
  e.g. an OpenAI-compatible server's context-length 400) ends it as ``context``. A model that ends its
  message finishes as ``answer`` when it wrote an answer span and as ``stop`` (``answer: null``, scored as
  wrong) when it did not.
* Outcomes. What the model causes is its outcome and is scored: its code timed out, ran out of memory,
  crashed or printed too much (it reads that as text and carries on), the answer is wrong or missing, a
  budget or the context ran out. What the infrastructure causes ends the trajectory with finish
  ``infra_error``, reward 0, ``correct: false`` and ``error`` (or ``verify_error``) saying why: a
  ``sandbox_error`` result, a backend's failed request (``Completion.finish == "error"``), a verifier
  exception. Such a trajectory is no outcome of the model: training leaves it out of group statistics and the
  loss, score-potential out of pass rates (``records.is_infra_error``). A sandbox or backend failure is
  retried from the same prompt up to ``infra_retries`` times; a retry replays the same sample (same id, same
  per-turn seeds), so after a transient failure the trajectory is the one a run without the failure gives
  (hf on CPU). A verifier exception is not retried: the verifier is deterministic in the answer.
* ``logprobs``: token backends return, and model turns keep, the sampler's log-prob of every sampled id
  (rl-stage's importance correction needs them).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from r1ci_cli import interaction
from r1ci_cli.answer import extract_answer
from r1ci_cli.backends.base import Completion, Generator, GenRequest
from r1ci_cli.records import (ExecResult, Task, Trajectory, Turn, exec_request_id, task_fields_for_trajectory,
                              trajectory_id)
from r1ci_cli.rollout import reward as rewards
from r1ci_cli.rollout.styles import Style, get_style, steer_hint
from r1ci_cli.seeds import derive_seed
from r1ci_cli.settings import RUNTIME
from r1ci_cli.tasks.registry import Instance, get_family, score

log = logging.getLogger("r1ci.rollout")

INFRA_ERROR = "infra_error"  # the finish of a trajectory the infrastructure ended (records.INFRA_FINISHES)


@dataclass(frozen=True)
class RolloutOptions:
    """How trajectories are generated and scored (the generation/reward options of rollout, eval and rl-stage).

    ``cohorts`` and ``max_in_flight`` schedule the work and are ``runtime`` (``settings.py``); every other
    field shapes the trajectories."""

    style: str = "agent"
    temperature: float = 1.0  # docs/paper.md "GRPO": 1.0 in training, 0.6 at evaluation
    top_p: float = 1.0
    samples: int = 1
    seed: int = 0
    max_code_calls: int = interaction.DEFAULT_MAX_CODE_CALLS
    timeout_s: float = interaction.DEFAULT_TIMEOUT_S
    max_new_tokens: int = 2048
    max_total_tokens: int = 8192
    max_observation_chars: int = interaction.DEFAULT_MAX_OBSERVATION_CHARS
    reward: rewards.RewardOptions = field(default_factory=rewards.RewardOptions)
    prompts: str = "paper"  # system prompt set (rollout.prompts.PROMPT_SETS) or a JSON file of style prompts
    stop_at_answer: bool = False  # end a turn at its first answer span too (interaction.find_stop)
    infra_retries: int = 2  # a sandbox or backend failure is retried from the same prompt this many times
    logprobs: bool = False  # keep the sampler's log-prob of every sampled id on model turns (rl-stage)
    cohorts: int = field(default=2, metadata=RUNTIME)
    max_in_flight: int = field(default=64, metadata=RUNTIME)


@dataclass
class RolloutStats:
    """Counters for the summary line and the benchmark (wall seconds split by what the loop waited on)."""

    num_trajectories: int = 0
    num_resumed: int = 0  # of num_trajectories, finished before a resume (not in the token and time counts)
    num_correct: int = 0
    num_code_calls: int = 0
    num_new_tokens: int = 0
    num_infra_retries: int = 0
    finish: Counter = field(default_factory=Counter)
    generate_s: float = 0.0
    sandbox_wait_s: float = 0.0
    started: float = field(default_factory=time.monotonic)

    def add(self, traj: Trajectory) -> None:
        self.num_trajectories += 1
        self.num_correct += int(traj.correct)
        self.num_code_calls += traj.num_code_calls
        self.num_new_tokens += int(traj.extra.get("usage", {}).get("completion_tokens", 0))
        self.finish[traj.finish] += 1

    def add_resumed(self, rows: Iterable[dict[str, Any]]) -> None:
        """Trajectories (as dicts) an earlier run finished: counted in the summary, not in its speeds."""
        for row in rows:
            self.num_trajectories += 1
            self.num_resumed += 1
            self.num_correct += int(row.get("correct") is True)
            self.num_code_calls += int(row.get("num_code_calls") or 0)
            self.finish[str(row.get("finish"))] += 1

    @property
    def wall_s(self) -> float:
        return time.monotonic() - self.started

    def summary(self) -> str:
        n = max(self.num_trajectories, 1)
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.finish.items()))
        wall = max(self.wall_s, 1e-9)
        resumed = f" ({self.num_resumed} resumed)" if self.num_resumed else ""
        retried = f" | infra retries {self.num_infra_retries}" if self.num_infra_retries else ""
        return (f"{self.num_trajectories} trajectories{resumed} | accuracy {self.num_correct / n:.3f} | "
                f"mean code calls {self.num_code_calls / n:.2f} | finish: {reasons or 'none'}{retried} | "
                f"{self.num_new_tokens / wall:.1f} tokens/s | sandbox wait {100 * self.sandbox_wait_s / wall:.1f}%")


class _State:
    """One trajectory in flight."""

    def __init__(self, task: Task, sample: int, style: Style, opts: RolloutOptions, generator: Generator):
        self.task, self.sample, self.style = task, sample, style
        self.id = trajectory_id(task.id, style.name, opts.temperature, sample)
        self.messages = ({"role": "system", "content": style.system_prompt},
                         {"role": "user", "content": style.user_message(task.question)})
        prompt_ids = generator.encode_prompt(self.messages)
        self.prompt_ids = tuple(prompt_ids) if prompt_ids is not None else None
        self.context_ids: list[int] | None = list(prompt_ids) if prompt_ids is not None else None
        self.turns: list[Turn] = []
        self.stops: list[str | None] = []
        self.num_code_calls = 0
        self.num_new_tokens = 0
        self.num_prompt_tokens = 0 if prompt_ids is None else len(prompt_ids)
        self.num_observation_tokens = 0
        self.num_requests = 0
        self.exec_wall_ms = 0.0
        self.pending: Future[ExecResult] | None = None
        self.finish: str | None = None
        self.error: str | None = None
        self.program_answer: str | None = None  # code style: what the single program printed
        self.order = 0  # position among the jobs of this run: output order
        self.attempt = 0  # infrastructure retries so far (``infra_retries``)

    def request(self, opts: RolloutOptions) -> GenRequest:
        budget = min(opts.max_new_tokens, opts.max_total_tokens - self.num_new_tokens)
        return GenRequest(
            key=self.id, messages=self.messages, turns=tuple((t.role, t.text) for t in self.turns),
            max_new_tokens=budget, temperature=opts.temperature, top_p=opts.top_p,
            seed=derive_seed(opts.seed, self.id, len(self.turns)), allow_code=self.style.allow_code,
            context_ids=tuple(self.context_ids) if self.context_ids is not None else None,
            stop_at_answer=opts.stop_at_answer, logprobs=opts.logprobs)


def _apply_completion(state: _State, comp: Completion, opts: RolloutOptions, sandbox: Any) -> None:
    state.num_requests += 1
    state.num_new_tokens += comp.num_new_tokens
    if state.prompt_ids is None and state.num_requests == 1:
        state.num_prompt_tokens = comp.num_prompt_tokens
    if comp.finish == "error":  # the backend failed on this request: the infrastructure's, not the model's
        ids = (comp.ids or ()) if state.context_ids is not None else None
        state.turns.append(Turn(role="model", text=comp.text, ids=ids))
        state.finish, state.error = INFRA_ERROR, f"backend_error: {(comp.error or 'no detail').strip()[:500]}"
        return
    logprobs = comp.logprobs if opts.logprobs else None
    state.turns.append(Turn(role="model", text=comp.text, ids=comp.ids, logprobs=logprobs))
    if state.context_ids is not None:
        if comp.ids is None:
            raise RuntimeError("a token backend returned a completion without ids")
        state.context_ids.extend(comp.ids)
    stop = interaction.find_stop(comp.text, allow_code=state.style.allow_code, stop_at_answer=opts.stop_at_answer)
    if stop is None or stop.kind == "answer":
        # The turn ended without a code block: the model's message is over (or its budget or context is).
        state.stops.append("answer" if extract_answer(comp.text) is not None else None)
        if comp.finish == "context":
            state.finish = "context"
        elif comp.finish == "length" and stop is None:
            state.finish = "max_tokens"
        else:
            state.finish = "answer" if extract_answer(_response(state)) is not None else "stop"
    elif state.num_code_calls >= (1 if state.style.single_program else opts.max_code_calls):
        state.stops.append(stop.kind)
        state.finish = "max_calls"
    else:
        state.stops.append(stop.kind)
        state.num_code_calls += 1
        state.pending = sandbox.submit(stop.code, timeout_s=opts.timeout_s,
                                       request_id=exec_request_id(state.id, state.num_code_calls))
        return
    if state.finish is None and state.num_new_tokens >= opts.max_total_tokens:
        state.finish = "max_tokens"


def _apply_result(state: _State, result: ExecResult, opts: RolloutOptions, generator: Generator) -> None:
    state.pending = None
    state.exec_wall_ms += result.wall_ms
    if result.status == "sandbox_error":
        state.finish = INFRA_ERROR
        state.error = f"sandbox_error: {(result.stderr or 'no detail').strip()[:500]}"
        return
    text = interaction.format_observation(result, opts.timeout_s, opts.max_observation_chars)
    if state.style.steered:
        text += steer_hint(state.num_code_calls, result.status) + "\n\n"
    ids = generator.encode_text(text)
    ids = tuple(ids) if ids is not None else None
    state.turns.append(Turn(role="exec", text=text, ids=ids, status=result.status))
    if state.context_ids is not None:
        state.context_ids.extend(ids)
        state.num_observation_tokens += len(ids)
    if state.style.single_program:
        printed = extract_answer(result.stdout)
        state.program_answer = printed if printed is not None else (result.stdout.strip() or None)
        state.finish = "answer" if state.program_answer is not None else "max_calls"
    elif state.num_new_tokens >= opts.max_total_tokens:
        state.finish = "max_tokens"


def _response(state: _State) -> str:
    """What the model wrote, all model turns in order: the verdict reads its last answer span."""
    return "".join(t.text for t in state.turns if t.role == "model")


def _finalize(state: _State, opts: RolloutOptions, generator: Generator) -> Trajectory:
    task = state.task
    family = get_family(task.task, task.source)
    instance = Instance(question=task.question, check=task.check, answer=task.answer)
    if state.style.single_program:
        response = f"<<<{state.program_answer}>>>" if state.program_answer is not None else ""
        formed = state.stops == ["code"] and state.program_answer is not None
    else:
        response = _response(state) if state.finish == "answer" else ""
        formed = rewards.well_formed(state.stops, state.finish or "")
    verify_error = None
    if state.finish == INFRA_ERROR:
        answer, correct, value = None, False, 0.0
    else:
        verdict = score(family, instance, response) if response else None
        answer = verdict.answer if verdict else None
        correct = bool(verdict and verdict.correct)
        value = rewards.reward(correct, formed, len(state.stops), opts.reward)
        verify_error = verdict.verify_error if verdict else None
        if verify_error is not None:  # the verifier broke, not the model: no verdict, no reward
            state.finish, correct, value = INFRA_ERROR, False, 0.0
    extra: dict[str, Any] = task_fields_for_trajectory(task)
    extra.update({
        "prompt": list(state.messages), "sample_index": state.sample,
        "sample_seed": derive_seed(opts.seed, state.id), "rollout_seed": opts.seed,
        "well_formed": formed,
        "usage": {"prompt_tokens": state.num_prompt_tokens, "completion_tokens": state.num_new_tokens,
                  "observation_tokens": state.num_observation_tokens, "requests": state.num_requests},
    })
    if state.prompt_ids is not None:
        extra["prompt_ids"] = list(state.prompt_ids)
        extra["tokenizer"] = generator.tokenizer_fingerprint
    if state.error is not None:
        extra["error"] = state.error
    if verify_error is not None:
        extra["verify_error"] = verify_error
    if state.attempt:
        extra["infra_retries"] = state.attempt
    return Trajectory(id=state.id, task_id=task.id, style=state.style.name, temperature=opts.temperature,
                      model=generator.model_name, turns=tuple(state.turns), answer=answer, correct=correct,
                      reward=value, num_code_calls=state.num_code_calls, finish=state.finish or INFRA_ERROR,
                      extra=extra)


def _jobs(tasks: Iterable[Task], opts: RolloutOptions, skip: set[str], style: Style) -> Iterator[tuple[Task, int]]:
    for task in tasks:
        for sample in range(opts.samples):
            if trajectory_id(task.id, style.name, opts.temperature, sample) not in skip:
                yield task, sample


def rollout(tasks: Iterable[Task], generator: Generator, sandbox: Any, opts: RolloutOptions,
            skip: Iterable[str] = (), stats: RolloutStats | None = None, ordered: bool = True) -> Iterator[Trajectory]:
    """Roll out every task ``opts.samples`` times; see the module docstring for the contract. ``ordered=False``
    yields each trajectory the moment it finishes (a file output that is sorted at the end)."""
    style = get_style(opts.style, opts.prompts)
    if opts.cohorts < 1 or opts.max_in_flight < 1:
        raise ValueError("cohorts and max_in_flight must be positive")
    watch = getattr(generator, "watch", None)  # a generator that keeps tasks or outputs (base.Generator)
    if watch is not None:
        tasks, sandbox = watch(tasks, sandbox)
    stats = stats if stats is not None else RolloutStats()
    jobs = enumerate(_jobs(tasks, opts, set(skip), style))
    slots: list[_State | None] = [None] * max(opts.max_in_flight, opts.cohorts)
    finished: dict[int, Trajectory] = {}  # held back until every earlier job is out (input order)
    next_out = 0

    def refill(slot: int) -> None:
        job = next(jobs, None)
        if job is None:
            slots[slot] = None
            return
        order, (task, sample) = job
        slots[slot] = _State(task, sample, style, opts, generator)
        slots[slot].order = order

    def emit() -> Iterator[Trajectory]:
        nonlocal next_out
        if not ordered:
            for order in sorted(finished):
                yield finished.pop(order)
            return
        while next_out in finished:
            yield finished.pop(next_out)
            next_out += 1

    try:
        yield from _schedule(slots, refill, emit, generator, sandbox, opts, stats, finished)
    except Exception:
        # Nothing finished is lost when the run stops: the ones held back for order go out first.
        for order in sorted(finished):
            yield finished.pop(order)
        raise
    assert not finished, "every finished trajectory is emitted"


def _schedule(slots: list[_State | None], refill: Any, emit: Any, generator: Generator, sandbox: Any,
              opts: RolloutOptions, stats: RolloutStats, finished: dict[int, Trajectory]) -> Iterator[Trajectory]:
    """The cohort schedule of the module docstring: collect results, generate one turn, submit code."""
    for slot in range(len(slots)):
        refill(slot)
    while any(s is not None for s in slots):
        for cohort in range(opts.cohorts):
            members = [i for i in range(cohort, len(slots), opts.cohorts) if slots[i] is not None]
            waited = time.monotonic()
            for i in members:
                state = slots[i]
                if state.pending is not None:
                    _apply_result(state, state.pending.result(), opts, generator)
            stats.sandbox_wait_s += time.monotonic() - waited
            _retire(slots, members, refill, opts, generator, stats, finished)
            yield from emit()
            ready = [i for i in members if slots[i] is not None and slots[i].pending is None]
            if not ready:
                continue
            started = time.monotonic()
            completions = generator.generate([slots[i].request(opts) for i in ready])
            stats.generate_s += time.monotonic() - started
            if len(completions) != len(ready):
                raise RuntimeError(f"backend returned {len(completions)} completions for {len(ready)} requests")
            for i, comp in zip(ready, completions):
                _apply_completion(slots[i], comp, opts, sandbox)
            _retire(slots, ready, refill, opts, generator, stats, finished)
            yield from emit()


def _retire(slots: list[_State | None], indices: list[int], refill: Any, opts: RolloutOptions,
            generator: Generator, stats: RolloutStats, finished: dict[int, Trajectory]) -> None:
    for i in indices:
        state = slots[i]
        if state is not None and state.finish == INFRA_ERROR and state.attempt < opts.infra_retries:
            log.info("%s: %s; retrying from the prompt (%d of %d)", state.id, state.error, state.attempt + 1,
                     opts.infra_retries)
            retry = _State(state.task, state.sample, state.style, opts, generator)
            retry.order, retry.attempt = state.order, state.attempt + 1
            slots[i] = retry
            stats.num_infra_retries += 1
            continue
        if state is not None and state.finish is not None:
            traj = _finalize(state, opts, generator)
            stats.add(traj)
            finished[state.order] = traj
            refill(i)
