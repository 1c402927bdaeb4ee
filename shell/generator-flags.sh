#!/usr/bin/env bash
# shell/generator-flags.sh SPEC — prints the rollout flags that generate with SPEC, TEACHER's syntax (reference,
# openai:NAME, a vllm serve URL with TEACHER_MODEL, or a checkpoint run with $BACKEND), space-separated. The
# Makefile reads TEACHER through it, so lib.sh's generator_flags is the one place that parses that syntax.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
generator_flags "${1-}"
echo "${GENERATOR_FLAGS[*]}"
