"""Shared fixtures: tiny offline reward models and the shared real data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tests.tiny_models import make_tiny_rm  # noqa: E402

SHARED_DATA = Path(
    os.environ.get("EBRM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data`, or skip when this machine does not have it."""
    if not (SHARED_DATA / "hh-rlhf-harmless" / "pairs.jsonl.gz").exists():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set EBRM_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_rm_dir(tmp_path_factory) -> Path:
    """A tiny random Llama sequence-classification RM saved as a HF directory."""
    return make_tiny_rm(tmp_path_factory.mktemp("tiny-llama-rm"), "llama", seed=0)


@pytest.fixture(scope="session")
def tiny_bert_rm_dir(tmp_path_factory) -> Path:
    """A tiny random BERT-style sequence-classification RM saved as a HF directory."""
    return make_tiny_rm(tmp_path_factory.mktemp("tiny-bert-rm"), "bert", seed=0)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tests use one thread: on a shared 2-core box oversubscription makes them 10x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
