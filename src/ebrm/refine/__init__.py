"""Refinement: from the energy head's density p(y | e) to rewards (DESIGN §1.6-1.7)."""

from __future__ import annotations

from ebrm._lazy import lazy_getattr

# name -> module, imported on first use: the CLI reads this package's names and
# defaults (ebrm.cli) without importing torch
_EXPORTS = {
    "METHODS": "ebrm.refine.config",
    "REWARD_KINDS": "ebrm.refine.kinds",
    "PaperResult": "ebrm.refine.paper",
    "Posterior": "ebrm.refine.grid",
    "RefineConfig": "ebrm.refine.config",
    "RefinedRewards": "ebrm.refine.results",
    "RewardKind": "ebrm.refine.kinds",
    "check_reward_kind": "ebrm.refine.kinds",
    "grid_posterior": "ebrm.refine.grid",
    "grid_scores": "ebrm.refine.grid",
    "p_better": "ebrm.refine.grid",
    "paper_refine": "ebrm.refine.paper",
    "paper_search": "ebrm.refine.paper",
    "posterior_mean": "ebrm.energy.posterior",
}
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
