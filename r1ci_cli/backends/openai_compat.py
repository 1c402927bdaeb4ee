"""A client of any OpenAI-compatible chat server (GPT-4o, the paper's teacher; ``vllm serve``; llama.cpp's
server), on the ``openai`` package: the client every user of such a server already configures.

Contract (see ``base.Generator``):

* The conversation is sent as chat messages: system, user, then each model turn as an ``assistant``
  message and each observation as a ``user`` message (hosted APIs cannot continue a half-written assistant
  message). The trajectory records the same turns as every other backend.
* The server writes freely; the client cuts the reply after its first complete python block (or, with
  ``stop_at_answer``, its first answer: ``interaction.find_stop``) and drops the rest, so the stop rule is the
  same everywhere. ``num_new_tokens`` is what the server reports (it counts the dropped part too: that is
  what was paid for).
* The ``openai`` package does the HTTP: ``base_url`` (else ``$OPENAI_BASE_URL``, else OpenAI's API), the key
  from the variable named by ``api_key_env`` (a local server without a key gets a placeholder), the
  per-request ``timeout_s``, and ``max_retries`` retries with exponential backoff and jitter on 408, 409,
  429, 5xx, timeouts and dropped connections (``Retry-After`` honoured). Its retry messages stay at debug
  level; what is left after the retries is one line.
* Typed errors: a 400 saying the context is too long (OpenAI's ``context_length_exceeded``, vLLM's and
  llama.cpp's wording) is the trajectory's outcome, not the run's: the completion comes back with finish
  ``context``, the loop ends that trajectory as ``context`` and the run goes on. A retryable failure (408,
  409, 429, 5xx, a timeout or dropped connection) that outlives the retries is the infrastructure's: a
  completion with finish ``error`` naming the server and the status (the loop's ``infra_error``, retried
  ``--infra-retries`` times from the prompt). Any other error status (401, a 400 the server refuses) is an
  ``R1ciError`` naming the server, the status and its message: the setup is wrong, the run stops.
* The API key is never logged, never written to a record, and removed from any error text that might echo it.
* ``seed`` is forwarded; servers may ignore it, so runs are not guaranteed to repeat.

``openai`` is an optional extra (``pip install 'r1ci[openai]'``); without it the backend is a one-line
error. No token ids: ``ids`` is None.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from r1ci_cli.backends.base import Completion, GenRequest
from r1ci_cli.errors import MissingDependency, R1ciError
from r1ci_cli.interaction import find_stop

log = logging.getLogger("r1ci.backends.openai")

# How servers say the conversation no longer fits: OpenAI's error code, then the wording of vLLM ("This
# model's maximum context length is …"), llama.cpp ("exceeds the available context size",
# exceed_context_size_error) and others ("context window", "too many tokens").
CONTEXT_CODES = {"context_length_exceeded", "exceed_context_size_error"}
CONTEXT_WORDS = re.compile(r"context[ _]length|context[ _]size|maximum context|context window|prompt is too long"
                           r"|too many tokens", re.IGNORECASE)
NO_KEY = "EMPTY"  # sent to servers that need no key (vLLM's and llama.cpp's convention)


def _import_openai() -> Any:
    try:
        import openai
    except ImportError:
        raise MissingDependency("openai", "install r1ci[openai] (pip install 'r1ci[openai]') for --backend openai")
    return openai


class OpenAIGenerator:
    def __init__(self, model: str, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 concurrency: int = 8, max_retries: int = 5, timeout_s: float = 600.0):
        openai = _import_openai()
        self._openai = openai
        self.model_name = model
        self.tokenizer_fingerprint = None
        self._key = os.environ.get(api_key_env) or None
        if self._key is None:
            log.info("no API key in $%s: sending requests with a placeholder key", api_key_env)
        self.client = openai.OpenAI(base_url=base_url or os.environ.get("OPENAI_BASE_URL") or None,
                                    api_key=self._key or NO_KEY, timeout=timeout_s, max_retries=max_retries)
        self.url = str(self.client.base_url).rstrip("/")
        self.max_retries = max_retries
        # The package logs every retry at info level; they are debug here (the final error says enough).
        logging.getLogger("openai").setLevel(max(logging.getLogger("openai").getEffectiveLevel(), logging.WARNING))
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="r1ci-openai")

    def encode_prompt(self, messages: Sequence[Mapping[str, str]]) -> None:
        return None

    def encode_text(self, text: str) -> None:
        return None

    def generate(self, requests: Sequence[GenRequest]) -> list[Completion]:
        return list(self._pool.map(self._one, requests))

    @staticmethod
    def chat_messages(request: GenRequest) -> list[dict[str, str]]:
        messages = [dict(m) for m in request.messages]
        for role, text in request.turns:
            messages.append({"role": "assistant" if role == "model" else "user", "content": text.strip("\n")})
        return messages

    def _one(self, request: GenRequest) -> Completion:
        openai = self._openai
        extra: dict[str, Any] = {"top_p": request.top_p} if request.top_p < 1.0 else {}
        try:
            reply = self.client.chat.completions.create(
                model=self.model_name, messages=self.chat_messages(request), max_tokens=request.max_new_tokens,
                temperature=request.temperature, seed=request.seed % (1 << 31), **extra)
        except openai.APIStatusError as err:
            if err.status_code == 400 and _context_exceeded(err):
                log.debug("%s: %s: the context no longer fits (%s)", self.url, request.key, self._message(err))
                return Completion(text="", finish="context")
            if not _retryable(err.status_code):  # the request or the setup is wrong: the run's error
                raise R1ciError(f"{self.url}: HTTP {err.status_code}: {self._message(err)}") from None
            return self._failed(f"HTTP {err.status_code} after {self.max_retries} retries: {self._message(err)}")
        except openai.APIConnectionError as err:  # timeouts included
            return self._failed(f"{type(err).__name__} after {self.max_retries} retries: "
                                f"{self._redact(str(err))[:300]}")
        try:
            choice = reply.choices[0]
            text = choice.message.content or ""
            server_finish = choice.finish_reason
        except (AttributeError, IndexError, TypeError):
            raise R1ciError(f"{self.url}: unexpected reply shape: {self._redact(str(reply))[:300]}") from None
        usage = getattr(reply, "usage", None)
        stop = find_stop(text, request.allow_code, request.stop_at_answer)
        if stop is not None:
            text, finish = text[:stop.end], "stop"
        else:
            finish = "length" if server_finish == "length" else "eos"
        return Completion(text=text, finish=finish, num_prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                          num_new_tokens=int(getattr(usage, "completion_tokens", 0) or 0))

    def _failed(self, why: str) -> Completion:
        """A server failure that outlived the client's retries: the infrastructure's, not the model's; the loop
        ends the trajectory as ``infra_error`` (after its own ``--infra-retries``) and the run goes on."""
        log.warning("%s: %s", self.url, why)
        return Completion(text="", finish="error", error=f"{self.url}: {why}")

    def _message(self, err: Any) -> str:
        body = err.body
        message = body.get("message") if isinstance(body, dict) else None
        return self._redact(str(message or err.message or err))[:500]

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "[REDACTED]") if self._key else text

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()


def _retryable(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


def _context_exceeded(err: Any) -> bool:
    body = err.body if isinstance(err.body, dict) else {}
    codes = {str(body.get("code")), str(body.get("type")), str(getattr(err, "code", None))}
    return bool(codes & CONTEXT_CODES) or bool(CONTEXT_WORDS.search(str(body.get("message") or err.message or "")))
