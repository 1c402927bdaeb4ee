"""Model backends behind one small interface (``base.Generator``): reference, hf, vllm, openai."""

from r1ci_cli.backends.base import BACKENDS, BackendOptions, Completion, Generator, GenRequest, open_generator

__all__ = ["BACKENDS", "BackendOptions", "Completion", "GenRequest", "Generator", "open_generator"]
