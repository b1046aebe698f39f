"""Training losses on energy-head scores (pure functions of tensors).

References:
    Lochab & Zhang, "Energy-Based Reward Models for Robust Language Model Alignment",
    COLM 2025 (arXiv 2504.13134), NCE+; DESIGN §1.5 and §1.8.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nce_plus_loss(
    scores: torch.Tensor, log_q: torch.Tensor, *, reg_weight: float = 0.05
) -> torch.Tensor:
    """NCE+ loss in log space.

    `loss_i = -(f_i0 - log q_i0) + logsumexp_{m=0..M}(f_im - log q_im)`;
    total `= mean_i loss_i + reg_weight * mean(f^2)` over all candidates.

    Inputs:
        scores: (B, M+1) f(e_i, y_im); column 0 is the positive.
        log_q: (B, M+1) proposal log density at every candidate (positive included).

    Returns:
        Scalar loss.

    Example:
        >>> f = torch.zeros(2, 4); nce_plus_loss(f, torch.zeros(2, 4), reg_weight=0.0)
        tensor(1.3863)
    """
    logits = scores - log_q  # (B, M+1)
    per_record = torch.logsumexp(logits, dim=1) - logits[:, 0]  # (B,)
    return per_record.mean() + reg_weight * scores.pow(2).mean()


def bradley_terry_loss(mean_chosen: torch.Tensor, mean_rejected: torch.Tensor) -> torch.Tensor:
    """Bradley-Terry negative log likelihood `mean(-log sigmoid(m_c - m_r))`.

    Inputs:
        mean_chosen: (P,) reward (e.g. posterior mean) of each pair's chosen response.
        mean_rejected: (P,) reward of its rejected response.
    """
    return -F.logsigmoid(mean_chosen - mean_rejected).mean()
