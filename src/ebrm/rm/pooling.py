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


def alone_index(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, pad_token_id: int | None
) -> torch.Tensor:
    """The token each row would be pooled at if the model saw it alone, unpadded.

    `last_non_pad_index` is the model's rule on a padded batch; it depends on the batch
    wherever a text's own tokens equal the pad id: with pad == eos and no pad id of its
    own, a model alone pools the last token (a trailing eos included), the batch rule skips
    it; a text made only of pad ids is pooled at its first token alone, at position 0 of a
    left-padded batch. Here the padding is read from the attention mask, never from the
    token ids, so the index does not depend on batch-mates or padding side.

    Args:
        input_ids: (B, T) token ids.
        attention_mask: (B, T), 1 on each row's own tokens (one contiguous span).
        pad_token_id: the pad id of the model's own config, the one it pools by even
            alone; `None` (a config without one) pools the last token.

    Returns:
        (B,) int64 positions, each inside its row's span.
    """
    length = input_ids.shape[1]
    own = attention_mask.to(torch.bool)  # (B, T)
    positions = torch.arange(length, device=input_ids.device)
    first = torch.where(own, positions, length).amin(-1)  # (B,)
    last = torch.where(own, positions, -1).amax(-1)  # (B,)
    if pad_token_id is None:
        return last
    poolable = own & (input_ids != pad_token_id)
    rightmost = torch.where(poolable, positions, -1).amax(-1)  # -1: none in the row
    # alone, `(positions * non_pad).argmax` of an all-pad row is 0: the row's first token
    return torch.where(rightmost >= 0, rightmost, first)


def pool_head_input(
    head_input: torch.Tensor, input_ids: torch.Tensor, pad_token_id: int | None
) -> torch.Tensor:
    """Reduce what the head received to one vector per row, by the model's batch rule.

    Encoders (BERT-style) pool before the head, so the head already sees (B, H); decoders
    apply the head to every position (B, T, H) and pick one token afterwards
    (`last_non_pad_index`; `alone_index` is the batch-invariant choice).

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
