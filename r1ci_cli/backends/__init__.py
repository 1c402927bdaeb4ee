"""Model backends behind one small interface (``base.Generator``): reference, hf, vllm, openai.

``open_generator`` picks one by name; GPU-only and optional packages are imported inside it, never at module
top, so ``r1ci --help`` and every CPU path stay import-clean.
"""

from __future__ import annotations

from r1ci_cli.backends.base import BACKENDS, BackendOptions, Completion, Generator, GenRequest
from r1ci_cli.errors import R1ciError

__all__ = ["BACKENDS", "BackendOptions", "Completion", "GenRequest", "Generator", "open_generator"]


def open_generator(opts: BackendOptions) -> Generator:
    """Build the backend ``opts.kind``; GPU-only and optional packages are imported here, never at module top."""
    backend = opts.kind
    opts.check()
    if backend == "reference":
        from r1ci_cli.backends.reference import ReferenceGenerator

        return ReferenceGenerator(text_share=opts.text_share)
    if opts.model is None and backend in ("hf", "vllm", "openai"):
        raise R1ciError(f"--backend {backend} needs --model (a checkpoint directory or a served model name)")
    if backend == "hf":
        from r1ci_cli.backends.hf import HfGenerator

        return HfGenerator(opts.model, device=opts.device, dtype=opts.dtype, batch_size=opts.batch_size)
    if backend == "vllm":
        from r1ci_cli.backends.vllm_backend import VllmGenerator

        return VllmGenerator(opts.model, dtype=opts.dtype, gpu_memory_utilization=opts.gpu_memory_utilization,
                             max_model_len=opts.max_model_len)
    if backend == "openai":
        from r1ci_cli.backends.openai_compat import OpenAIGenerator

        return OpenAIGenerator(opts.model, base_url=opts.base_url, api_key_env=opts.api_key_env,
                               concurrency=opts.concurrency, max_retries=opts.max_retries,
                               timeout_s=opts.request_timeout_s)
    raise R1ciError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
