"""Temperature scaling of P(y_a > y_b): sigmoid(logit(p) / T), T fitted on validation pairs.

The energy posteriors are about as wide as the NCE+ positive noise, so a fully trained head
gives P(chosen > rejected) near 0 or 1 for most pairs: a sharp ranking, but overconfident
(measured ECE 0.23 on HH-RLHF against 0.03 for the base RM's Bradley-Terry sigmoid). One
temperature fitted by likelihood on the validation pairs (Guo et al. 2017) leaves every
ranking unchanged and makes the probability mean what it says. Hand-written because it is
one parameter: a log-spaced search is exact enough and has no optimiser to tune.
"""

from __future__ import annotations

import logging
import math

import torch

from ebrm.errors import ConfigError

_EPS = 1e-6  # p is clipped to [eps, 1 - eps]: a grid posterior can give exactly 0 or 1

logger = logging.getLogger(__name__)


def _logit(p: torch.Tensor) -> torch.Tensor:
    p = p.double().clamp(_EPS, 1 - _EPS)
    return torch.log(p) - torch.log1p(-p)


def temperature_scale(p: torch.Tensor, temperature: float) -> torch.Tensor:
    """sigmoid(logit(p) / T), in p's dtype; T = 1 returns p unchanged."""
    if not (math.isfinite(temperature) and temperature > 0):
        raise ConfigError(f"The temperature must be a finite float > 0. Got {temperature!r}.")
    if temperature == 1.0:
        return p
    return torch.sigmoid(_logit(p) / temperature).to(p.dtype)


def fit_temperature(
    p_first_wins: torch.Tensor, *, low: float = 0.05, high: float = 200.0, points: int = 401
) -> float:
    """The T minimising the negative log-likelihood of pairs whose first item won.

    Args:
        p_first_wins: (N,) P(y_a > y_b) for pairs where a was preferred (e.g. chosen first).
        low, high, points: the log-spaced search range and resolution.

    Returns:
        The fitted temperature (1.0 when there are no pairs).
    """
    if p_first_wins.numel() == 0:
        return 1.0
    logits = _logit(p_first_wins.flatten())
    temps = torch.logspace(math.log10(low), math.log10(high), points, dtype=torch.float64)
    nll = torch.nn.functional.softplus(-logits[None, :] / temps[:, None]).mean(dim=1)
    best = int(torch.argmin(nll))
    if best in (0, points - 1):
        logger.warning(
            "the fitted temperature %.3g is at the %s end of its search range [%g, %g]: the "
            "validation P(better) %s, so the calibrated probabilities are not trustworthy "
            "(more validation pairs, or a longer training budget, usually fix this)",
            float(temps[best]),
            "lower" if best == 0 else "upper",
            low,
            high,
            "is far too unsure (a head near its initialisation?)"
            if best == 0
            else "is wrong too often to carry any confidence",
        )
    return float(temps[best])
