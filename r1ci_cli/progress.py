"""Progress and logging on stderr.

tqdm on a terminal; on a non-TTY (SLURM logs, CI) a periodic one-line ``desc i/N | key: value`` log
instead of carriage-return noise; nothing under ``-q``. stdout is never touched (DeepSpeed's logger, which writes there
itself, is routed to our stderr handler).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger("r1ci")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (test runners swap it per command)."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: D401
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


class _ThroughOurHandler(logging.Filter):
    """On a library logger that prints to stdout itself (DeepSpeed's, made at its import, which transformers
    triggers even without --deepspeed): its records go to our stderr handler instead, warnings and up, errors
    only under -q ("Setting accelerator to CPU" is not news to a CPU user who asked for quiet)."""

    def __init__(self, handler: logging.Handler) -> None:
        super().__init__()
        self.handler, self.min_level = handler, logging.WARNING

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self.min_level:
            self.handler.handle(record)
        return False


def setup_logging(quiet: bool = False, verbose: bool = False) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    root = logging.getLogger("r1ci")
    root.setLevel(level)
    handler = next((h for h in root.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        root.addHandler(handler)
    root.propagate = False
    # The logger object outlives DeepSpeed's set-up (which resets its level and adds a stdout handler), and a
    # logger's filters run before its handlers.
    deepspeed = logging.getLogger("DeepSpeed")
    through = next((f for f in deepspeed.filters if isinstance(f, _ThroughOurHandler)), None)
    if through is None:
        through = _ThroughOurHandler(handler)
        deepspeed.addFilter(through)
    through.min_level = logging.ERROR if quiet else logging.WARNING


class Progress:
    """A progress counter: tqdm on a TTY, periodic log lines elsewhere, silent when disabled."""

    def __init__(self, total: int | None, desc: str, enabled: bool = True, every_s: float = 10.0):
        self.total, self.desc, self.every_s = total, desc, every_s
        self.count = 0
        self.postfix: dict[str, Any] = {}
        self._bar = None
        self._last = time.monotonic()
        self._enabled = enabled and log.isEnabledFor(logging.INFO)
        if self._enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, file=sys.stderr, dynamic_ncols=True)

    def update(self, n: int = 1, **postfix: Any) -> None:
        self.count += n
        self.postfix.update(postfix)
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix(self.postfix, refresh=False)
        elif self._enabled and time.monotonic() - self._last >= self.every_s:
            self._last = time.monotonic()
            log.info("%s", self.line())

    def line(self) -> str:
        total = f"/{self.total}" if self.total is not None else ""
        extras = "".join(f" | {k}: {v}" for k, v in self.postfix.items())
        return f"{self.desc} {self.count}{total}{extras}"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def track(items: Iterable[T], total: int | None, desc: str, enabled: bool = True) -> Iterator[T]:
    with Progress(total, desc, enabled) as bar:
        for item in items:
            yield item
            bar.update()
