"""Inference-only evaluation of f on many reward candidates (no autograd, dropout off).

`joint_scores` computes `head.forward_projected` for an eval-mode `EnergyHead` with tanh in
place and dropout skipped, optionally with the hidden layers in bfloat16; other heads
(any module with project_embeddings / project_rewards / forward_projected) fall back to
their own `forward_projected`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def inference_layers(head: nn.Module) -> list[nn.Linear] | None:
    """The Linear layers of an eval-mode EnergyHead's joint MLP after its first layer.

    None when the head is not laid out as [Tanh, Dropout, (Linear, Tanh, Dropout)*, Linear]
    or is training; callers then fall back to `forward_projected`.
    """
    rest = getattr(head, "joint_rest", None)
    if head.training or not isinstance(rest, nn.Sequential):
        return None
    kinds = [m for m in rest if not isinstance(m, nn.Dropout)]
    if len(kinds) % 2 or not all(
        isinstance(m, nn.Tanh if i % 2 == 0 else nn.Linear) for i, m in enumerate(kinds)
    ):
        return None
    return kinds[1::2]


def low_precision_layers(
    head: nn.Module, dtype: torch.dtype
) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """The hidden joint layers' weights cast once to `dtype` (None: keep full precision)."""
    linears = inference_layers(head)
    if dtype in (torch.float32, torch.float64) or linears is None:
        return None
    return [(m.weight.to(dtype), m.bias.to(dtype)) for m in linears[:-1]]


def joint_scores(
    head: nn.Module,
    emb_part: torch.Tensor,
    reward_part: torch.Tensor,
    low: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> torch.Tensor:
    """`head.forward_projected` without autograd: tanh in place, dropout skipped.

    The same arithmetic in the same order, so the values are identical; it saves one
    (n, K, H1) allocation and pass over memory per hidden layer. With `low` (from
    `low_precision_layers`) the hidden layers run in that dtype and the last layer in full
    precision; worth it only where bf16 matmuls are native (GPUs, CPUs with AVX-512 BF16
    or AMX): elsewhere they are slower than fp32.
    """
    linears = inference_layers(head)
    if linears is None:
        return head.forward_projected(emb_part, reward_part)
    if reward_part.ndim == 2:
        reward_part = reward_part.unsqueeze(0)  # (1, K, H1) shared by all rows
    x = (emb_part.unsqueeze(1) + reward_part).tanh_()  # (n, K, H1)
    if low is not None:
        x = x.to(low[0][0].dtype)
        for weight, bias in low:
            x = F.linear(x, weight, bias).tanh_()
        last = linears[-1]
        return F.linear(x.to(last.weight.dtype), last.weight, last.bias).squeeze(-1)
    for i, linear in enumerate(linears):
        x = F.linear(x, linear.weight, linear.bias)
        if i < len(linears) - 1:
            x.tanh_()
    return x.squeeze(-1)  # (n, K)


def scores_on_grid(
    head: nn.Module,
    emb_part: torch.Tensor,
    grid_part: torch.Tensor,
    grid_chunk: int,
    low: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> torch.Tensor:
    """f for projected embeddings (n, H1) on a projected grid (G, H1) -> (n, G)."""
    return torch.cat(
        [
            joint_scores(head, emb_part, grid_part[start : start + grid_chunk], low)
            for start in range(0, grid_part.shape[0], grid_chunk)
        ],
        dim=1,
    )


def score_points(head: nn.Module, emb_part: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """f at one point per row: (n, H1), (n,) -> (n,)."""
    return joint_scores(head, emb_part, head.project_rewards(points.unsqueeze(1)))[:, 0]
