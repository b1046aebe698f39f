"""Candidate rewards for NCE+ (DESIGN §1.5): one noisy positive and M Gaussian negatives."""

from __future__ import annotations

import math

import torch

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, std: float) -> torch.Tensor:
    """log N(x; mean, std^2), elementwise with broadcasting."""
    z = (x - mean) / std
    return -0.5 * z * z - math.log(std) - _HALF_LOG_2PI


def sample_candidates(
    targets: torch.Tensor,
    *,
    noise_std: float,
    positive_noise_ratio: float,
    num_negatives: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw NCE+ candidates around each target reward.

    Column 0 is the positive `y0 = y + nu`, `nu ~ N(0, (beta*sigma)^2)`; columns 1..M are
    negatives `y_m ~ N(y, sigma^2)`. The proposal density q = N(y, sigma^2) is evaluated at
    every candidate, the positive included.

    Args:
        targets: (B,) normalised target rewards y.
        noise_std: sigma.
        positive_noise_ratio: beta.
        num_negatives: M.
        generator: CPU generator for reproducible draws (draws are made on the CPU and
            moved to `targets.device`, so results do not depend on the device).

    Returns:
        (candidates (B, M+1), log_q (B, M+1)).
    """
    batch = targets.shape[0]
    noise = torch.randn(batch, num_negatives + 1, generator=generator).to(targets.device)
    scale = torch.full((num_negatives + 1,), noise_std, device=targets.device)
    scale[0] = positive_noise_ratio * noise_std
    candidates = targets.unsqueeze(1) + noise.to(targets.dtype) * scale  # (B, M+1)
    log_q = gaussian_log_density(candidates, targets.unsqueeze(1), noise_std)  # (B, M+1)
    return candidates, log_q
