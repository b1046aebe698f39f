"""Refinement: from the energy head's density p(y | e) to rewards (DESIGN §1.6-1.7)."""

from ebrm.energy.posterior import posterior_mean
from ebrm.refine.config import METHODS, RefineConfig
from ebrm.refine.grid import Posterior, grid_posterior, grid_scores, p_better
from ebrm.refine.paper import PaperResult, paper_refine, paper_search
from ebrm.refine.results import REWARD_KINDS, RefinedRewards, RewardKind, check_reward_kind

__all__ = [
    "METHODS",
    "REWARD_KINDS",
    "PaperResult",
    "Posterior",
    "RefineConfig",
    "RefinedRewards",
    "RewardKind",
    "check_reward_kind",
    "grid_posterior",
    "grid_scores",
    "p_better",
    "paper_refine",
    "paper_search",
    "posterior_mean",
]
