"""Where a sequence-classification RM reads its reward: the score head and the pooled token.

The embedding `ebrm` uses is the input of the RM's final scalar projection at the token
the model itself pools, so `head(embedding)` reproduces the model's own reward. This
module finds that projection in any `AutoModelForSequenceClassification` and mirrors the
model's pooling rule.
"""

from __future__ import annotations

import torch
from torch import nn

from ebrm.errors import IncompatibleArtifactError

# Names under which transformers' sequence-classification models (and common reward-model
# code) keep their final projection, most common first: `score` (Llama, Qwen2, Mistral,
# Gemma, GPT-2, GPT-NeoX, ...), `classifier` (BERT, DistilBERT, DeBERTa), and
# `classifier.out_proj` (RoBERTa/Electra, whose `classifier` is a dense-tanh-proj block).
HEAD_NAMES = ("score", "classifier", "classifier.out_proj", "v_head", "value_head", "out_proj")


def find_score_head(model: nn.Module) -> tuple[str, nn.Linear]:
    """The final `nn.Linear` that maps the pooled hidden state to the scalar reward.

    Args:
        model: a sequence-classification model with one output.

    Returns:
        (module name, the Linear module).

    Raises:
        IncompatibleArtifactError: no Linear layer with a single output exists.
    """
    modules = dict(model.named_modules())
    for name in HEAD_NAMES:
        module = modules.get(name)
        if isinstance(module, nn.Linear) and module.out_features == 1:
            return name, module
    # Unknown architecture: the output projection is registered after the backbone, so
    # the last single-output Linear is the head.
    candidates = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and module.out_features == 1
    ]
    if not candidates:
        raise IncompatibleArtifactError(
            f"{type(model).__name__} has no nn.Linear layer with a single output, so its "
            "scalar reward head cannot be located. Use a sequence-classification model "
            "with num_labels=1."
        )
    return candidates[-1]


def last_non_pad_index(input_ids: torch.Tensor, pad_token_id: int | None) -> torch.Tensor:
    """The token each row is pooled at by decoder sequence-classification models.

    Mirrors transformers (`GenericForSequenceClassification`, GPT-2, GPT-NeoX): the
    rightmost token that is not `pad_token_id`, which handles left and right padding; with
    pad == eos a trailing eos is therefore skipped, exactly as the model does.

    Args:
        input_ids: (B, T) token ids.
        pad_token_id: the model config's pad id; `None` means the last position.

    Returns:
        (B,) int64 positions.
    """
    batch, length = input_ids.shape
    if pad_token_id is None:
        return torch.full((batch,), length - 1, dtype=torch.long, device=input_ids.device)
    non_pad = (input_ids != pad_token_id).to(torch.int32)  # (B, T)
    positions = torch.arange(length, device=input_ids.device, dtype=torch.int32)
    return (positions * non_pad).argmax(-1).long()


def pool_head_input(
    head_input: torch.Tensor, input_ids: torch.Tensor, pad_token_id: int | None
) -> torch.Tensor:
    """Reduce what the head received to one vector per row.

    Encoders (BERT-style) pool before the head, so the head already sees (B, H); decoders
    apply the head to every position (B, T, H) and pick one token afterwards.

    Returns:
        (B, H) tensor in the model's dtype.
    """
    if head_input.ndim == 2:
        return head_input
    if head_input.ndim == 3:
        index = last_non_pad_index(input_ids, pad_token_id).to(head_input.device)
        rows = torch.arange(head_input.shape[0], device=head_input.device)
        return head_input[rows, index]
    raise IncompatibleArtifactError(
        f"The reward head received a tensor of shape {tuple(head_input.shape)}; expected "
        "(batch, hidden) or (batch, tokens, hidden)."
    )
