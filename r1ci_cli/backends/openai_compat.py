"""A client of any OpenAI-compatible chat server: GPT-4o (the paper's teacher), ``vllm serve``, llama.cpp.

Contract (see ``base.Generator``):

* The conversation is sent as chat messages: system, user, then each model turn as an ``assistant``
  message and each observation as a ``user`` message (hosted APIs cannot continue a half-written assistant
  message). The trajectory records the same turns as every other backend.
* The server writes freely; the client cuts the reply at the first complete python block or answer
  (``interaction.find_stop``) and drops the rest, so the stop rule is the same everywhere. ``num_new_tokens``
  is what the server reports (it counts the dropped part too: that is what was paid for).
* Up to ``concurrency`` requests are in flight. 429, 5xx, timeouts and dropped connections are retried
  ``max_retries`` times with exponential backoff (``Retry-After`` is honoured; the jitter comes from a
  private RNG seeded by the request); any other 4xx fails at once with the server's message.
* The API key is read from the environment variable named by ``api_key_env`` and sent only in the
  ``Authorization`` header. It is never logged, never written to a record, and removed from any error
  text that might echo it. A local server without a key is fine (no header is sent).
* ``seed`` is forwarded; servers may ignore it, so runs are not guaranteed to repeat.

Only the standard library is used (no ``openai`` package needed). No token ids: ``ids`` is None.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from r1ci_cli.backends.base import Completion, GenRequest
from r1ci_cli.errors import R1ciError
from r1ci_cli.interaction import find_stop

log = logging.getLogger("r1ci.backends.openai")

RETRY_STATUSES = {408, 409, 429, 500, 502, 503, 504}


class OpenAIGenerator:
    def __init__(self, model: str, base_url: str | None, api_key_env: str = "OPENAI_API_KEY",
                 concurrency: int = 8, max_retries: int = 5, timeout_s: float = 600.0,
                 backoff_s: float = 1.0, max_backoff_s: float = 60.0):
        if not base_url:
            raise R1ciError("--backend openai needs --base-url (e.g. https://api.openai.com/v1)")
        self.model_name = model
        self.tokenizer_fingerprint = None
        self.url = base_url.rstrip("/") + "/chat/completions"
        self._key = os.environ.get(api_key_env) or None
        if self._key is None:
            log.info("no API key in $%s: sending requests without Authorization", api_key_env)
        self.max_retries, self.timeout_s = max_retries, timeout_s
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
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
        body = {"model": self.model_name, "messages": self.chat_messages(request),
                "max_tokens": request.max_new_tokens, "temperature": request.temperature,
                "seed": request.seed % (1 << 31)}
        if request.top_p < 1.0:
            body["top_p"] = request.top_p
        reply = self._post(body, random.Random(request.seed))
        try:
            choice = reply["choices"][0]
            text = choice["message"].get("content") or ""
            server_finish = choice.get("finish_reason")
        except (KeyError, IndexError, TypeError, AttributeError):
            raise R1ciError(f"{self.url}: unexpected reply shape: {self._redact(json.dumps(reply)[:300])}") from None
        usage = reply.get("usage") or {}
        stop = find_stop(text, request.allow_code, request.stop_at_answer)
        if stop is not None:
            text, finish = text[:stop.end], "stop"
        else:
            finish = "length" if server_finish == "length" else "eos"
        return Completion(text=text, finish=finish, num_prompt_tokens=int(usage.get("prompt_tokens") or 0),
                          num_new_tokens=int(usage.get("completion_tokens") or 0))

    def _post(self, body: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self._key is not None:
            headers["Authorization"] = f"Bearer {self._key}"
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout_s) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as err:
                detail = self._redact(err.read().decode("utf-8", "replace")[:500])
                if err.code not in RETRY_STATUSES:
                    raise R1ciError(f"{self.url}: HTTP {err.code}: {detail}") from None
                problem = f"HTTP {err.code}"
                retry_after = _retry_after(err.headers.get("Retry-After") if err.headers else None)
            except (urllib.error.URLError, http.client.HTTPException, socket.timeout, ConnectionError) as err:
                problem = f"{type(err).__name__}: {self._redact(str(err))[:200]}"
            except json.JSONDecodeError:
                problem = "a reply that is not JSON"
            if attempt == self.max_retries:
                raise R1ciError(f"{self.url}: gave up after {self.max_retries + 1} attempts (last: {problem})")
            delay = retry_after if retry_after is not None else min(
                self.max_backoff_s, self.backoff_s * 2 ** attempt) * (0.5 + rng.random() / 2)
            log.warning("%s: %s; retrying in %.1f s (%d/%d)", self.url, problem, delay, attempt + 1,
                        self.max_retries)
            time.sleep(delay)
        raise AssertionError("unreachable")

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "[REDACTED]") if self._key else text

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, min(float(value), 300.0)) if value is not None else None
    except ValueError:
        return None
