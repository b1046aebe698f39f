"""Tiny random RMs of every supported architecture, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny_models import make_tiny_rm

ARCHS = ("llama", "qwen2", "gpt_neox", "gpt2", "bert")
DECODERS = ("llama", "qwen2", "gpt_neox", "gpt2")


@pytest.fixture(scope="session")
def tiny_rm_factory(tmp_path_factory):
    """`factory(arch)` -> directory of a seeded tiny RM of that architecture (cached)."""
    cache: dict[str, Path] = {}

    def factory(arch: str) -> Path:
        if arch not in cache:
            cache[arch] = make_tiny_rm(tmp_path_factory.mktemp(f"tiny-{arch}"), arch, seed=0)
        return cache[arch]

    return factory
