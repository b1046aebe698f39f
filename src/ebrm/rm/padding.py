"""The pad token and padding side a reward model pools correctly with.

Reward models pool one token per text (the last non-pad one, or [CLS]); both choices here
keep that token the one the model itself would pool.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from ebrm.errors import ConfigError
from ebrm.rm.hf import input_device

logger = logging.getLogger(__name__)


def setup_pad_token(model: nn.Module, tokenizer, name_or_path: str) -> int:
    """Pick the pad id the model pools by, giving tokenizer and config one if missing."""
    tok = tokenizer
    if tok.pad_token is None:
        if tok.eos_token is None:
            raise ConfigError(
                f"The tokenizer of {name_or_path} has neither a pad nor an eos token; "
                "set tokenizer.pad_token before wrapping it."
            )
        logger.info("Tokenizer has no pad token; using its eos token %r.", tok.eos_token)
        tok.pad_token = tok.eos_token
    text_config = model.config.get_text_config()
    if text_config.pad_token_id is None:
        # Without a pad id the model cannot pool batches; the usual fix (TRL does the
        # same) is the tokenizer's pad id, which pools the last non-pad token.
        logger.info("Model config has no pad_token_id; setting it to %d.", tok.pad_token_id)
        text_config.pad_token_id = tok.pad_token_id
    elif text_config.pad_token_id != tok.pad_token_id:
        logger.warning(
            "Model pad_token_id %d differs from the tokenizer's %s; padding with the "
            "model's, which is the id it pools by.",
            text_config.pad_token_id,
            tok.pad_token_id,
        )
    return int(text_config.pad_token_id)


def choose_padding_side(
    model: nn.Module,
    tokenizer,
    head: nn.Linear,
    pad_token_id: int,
    requested: str | None,
    name_or_path: str,
) -> str:
    """Right padding for models that pool a fixed position themselves (BERT's [CLS]).

    Decoders pool the last non-pad token, which works with either side; an encoder
    whose head receives an already pooled (B, H) vector reads position 0, which left
    padding would fill with a pad token. A one-row probe tells the two apart.
    """
    side = requested or getattr(tokenizer, "padding_side", "right")
    if side == "right" or _head_sees_all_tokens(model, head, pad_token_id):
        return side
    if requested == "left":
        raise ConfigError(
            f"padding_side='left' is not possible for {name_or_path}: it pools a fixed "
            "position itself (e.g. [CLS]), which left padding fills with a pad token. "
            "Use padding_side='right'."
        )
    logger.info("Tokenizer pads left, but this model pools [CLS]; padding right instead.")
    return "right"


@torch.inference_mode()
def _head_sees_all_tokens(model: nn.Module, head: nn.Linear, pad_token_id: int) -> bool:
    captured: list[torch.Tensor] = []
    handle = head.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    ids = torch.full((1, 2), pad_token_id, dtype=torch.long, device=input_device(model, head))
    try:
        model(input_ids=ids, attention_mask=torch.ones_like(ids))
    finally:
        handle.remove()
    return bool(captured) and captured[0].ndim == 3
