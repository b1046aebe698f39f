"""Small helpers shared by the refinement modules."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from ebrm.errors import DataFormatError, IncompatibleArtifactError


@contextlib.contextmanager
def eval_mode(head: nn.Module) -> Iterator[nn.Module]:
    """Switch dropout off for the duration, then restore the head's previous mode."""
    was_training = head.training
    head.eval()
    try:
        yield head
    finally:
        head.train(was_training)


def head_placement(head: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device and floating dtype of the head's parameters."""
    param = next(head.parameters())
    return param.device, param.dtype


def check_embeddings(head: nn.Module, embeddings: torch.Tensor, *, name: str = "embeddings"):
    """Validate (N, D) embeddings against the head and move them to its device and dtype.

    Raises:
        IncompatibleArtifactError: if D differs from the head's embedding dimension.
        DataFormatError: if the tensor is not 2-D or holds NaN/inf.
    """
    embeddings = torch.as_tensor(embeddings)
    if embeddings.ndim != 2:
        raise DataFormatError(
            f"{name} must be a 2-D (rows, dim) tensor; got shape {tuple(embeddings.shape)}"
        )
    expected = getattr(getattr(head, "config", None), "embedding_dim", None)
    if expected is not None and embeddings.shape[1] != expected:
        raise IncompatibleArtifactError(
            f"{name} have dimension {embeddings.shape[1]} but the energy head was trained on "
            f"embeddings of dimension {expected}; use features from the same base reward model "
            "the head was trained with"
        )
    if embeddings.numel() and not torch.isfinite(embeddings).all():
        rows = (~torch.isfinite(embeddings)).any(dim=1).nonzero().flatten()
        raise DataFormatError(
            f"{name} contain NaN or infinite values in {rows.numel()} of {embeddings.shape[0]} "
            f"rows (first bad row: {int(rows[0])}); re-extract those features or drop the rows"
        )
    device, dtype = head_placement(head)
    return embeddings.to(device=device, dtype=dtype)
