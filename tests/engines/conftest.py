"""Fixtures of the engine tests: tiny decoder RMs vLLM can run, and both engines on each.

vLLM's CPU attention refuses head_dim 16, so these RMs have hidden 128 and 2 heads
(head_dim 64), unlike the hidden-32 ones of `tests/tiny_models.py`. The tests here run
only where vLLM is importable (`make test-vllm`, in `.venv-vllm`).
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from ebrm.rm.adapter import BaseRewardModel
from ebrm.rm.engine import use_engine
from ebrm.rm.engine_config import EngineOptions
from tests.tiny_models import minilm_path

NEEDS_VLLM = "vLLM is not installed (run `make test-vllm`)"

MAX_LENGTH = 24  # short enough that the long test texts are truncated
TEMPLATE = "{{ bos_token }}{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} {% endfor %}"


def engine_config(arch: str, *, vocab_size: int, pad_token_id: int, eos_token_id: int):
    from transformers import LlamaConfig, MistralConfig, Qwen2Config

    config_class = {"llama": LlamaConfig, "qwen2": Qwen2Config, "mistral": MistralConfig}[arch]
    return config_class(
        hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=256, num_labels=1,
        vocab_size=vocab_size, pad_token_id=pad_token_id, bos_token_id=eos_token_id,
        eos_token_id=eos_token_id,
    )  # fmt: skip


def make_engine_rm(path: Path, arch: str, *, pad_is_eos: bool = False, seed: int = 0) -> Path:
    """A tiny random `{arch}ForSequenceClassification` RM with a chat template; with
    `pad_is_eos`, its pad token is its EOS ([SEP]), which ends every tokenized text."""
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    tokenizer.bos_token = "[CLS]"
    tokenizer.chat_template = TEMPLATE
    if pad_is_eos:
        tokenizer.pad_token = tokenizer.sep_token
    config = engine_config(
        arch, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(config).eval()
    with torch.no_grad():  # a visible bias: the head's bias must be applied too
        model.score.weight.mul_(10.0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def vllm_options(cache: Path) -> EngineOptions:
    """Small and quick: eager (no compilation), a 64 MiB KV cache."""
    return EngineOptions(
        engine="vllm", enforce_eager=True, kv_cache_memory_bytes=64 << 20, cache_dir=str(cache)
    )


def free(rm) -> None:
    """Drop a vLLM engine's memory before the next one loads."""
    rm.engine = None
    gc.collect()


@pytest.fixture(scope="module", params=["llama", "qwen2", "mistral", "llama-pad-eos"])
def engines(request, tmp_path_factory):
    """(the RM on transformers, the same RM on vLLM, arch)."""
    arch, _, variant = request.param.partition("-")
    root = tmp_path_factory.mktemp(f"engine-{request.param}")
    path = make_engine_rm(root / "rm", arch, pad_is_eos=bool(variant))
    reference = BaseRewardModel.from_pretrained(path, device="cpu", max_length=MAX_LENGTH)
    on_vllm = BaseRewardModel.from_pretrained(path, device="cpu", max_length=MAX_LENGTH)
    use_engine(on_vllm, vllm_options(root / "cache"))
    yield reference, on_vllm, request.param
    free(on_vllm)
