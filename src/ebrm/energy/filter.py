"""Conflict-aware filtering (DESIGN §1.3): keep pairs the base RM already agrees with."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ebrm.errors import DataFormatError


@dataclass(frozen=True)
class FilterReport:
    """What the conflict filter did."""

    total: int  # pairs seen
    kept: int  # pairs with r(chosen) > r(rejected) (strict)
    dropped: int  # total - kept
    ties: int  # dropped pairs with r(chosen) == r(rejected)

    @property
    def kept_fraction(self) -> float:
        return self.kept / self.total if self.total else 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"kept {self.kept} of {self.total} pairs ({100 * self.kept_fraction:.1f}%), "
            f"dropped {self.dropped} ({self.ties} ties)"
        )


def filter_conflicts(
    r_chosen: torch.Tensor, r_rejected: torch.Tensor
) -> tuple[torch.Tensor, FilterReport]:
    """Mask of pairs whose base rewards agree with the label, strictly.

    Args:
        r_chosen: (P,) base reward of each pair's chosen response.
        r_rejected: (P,) base reward of each pair's rejected response.

    Returns:
        (mask (P,) bool, FilterReport). Ties are dropped.

    Raises:
        DataFormatError: shapes differ or a reward is NaN/inf.
    """
    if r_chosen.shape != r_rejected.shape or r_chosen.ndim != 1:
        raise DataFormatError(
            f"r_chosen and r_rejected must be 1-D of equal length; got shapes "
            f"{tuple(r_chosen.shape)} and {tuple(r_rejected.shape)}"
        )
    if not (torch.isfinite(r_chosen).all() and torch.isfinite(r_rejected).all()):
        raise DataFormatError(
            "base rewards contain NaN or inf; re-extract the features or drop those pairs"
        )
    mask = r_chosen > r_rejected
    ties = int((r_chosen == r_rejected).sum())
    total, kept = int(mask.numel()), int(mask.sum())
    return mask, FilterReport(total=total, kept=kept, dropped=total - kept, ties=ties)
