"""Reward over-optimisation: how the gold reward of policies that optimise a proxy behaves.

`run_overopt` (the `ebrm overopt` command) trains or loads gold, proxy and EBRM rewards,
scores candidate pools and writes gold-vs-KL curves; the estimators are pure functions in
`policies.py` and `curves.py`.
"""

from ebrm.overopt.config import OveroptConfig
from ebrm.overopt.curves import overopt_curves, paired_gain, summarise
from ebrm.overopt.policies import bon_kl, bon_policy, kl_from_uniform, kl_regularised_policy
from ebrm.overopt.run import run_overopt

__all__ = [
    "OveroptConfig",
    "bon_kl",
    "bon_policy",
    "kl_from_uniform",
    "kl_regularised_policy",
    "overopt_curves",
    "paired_gain",
    "run_overopt",
    "summarise",
]
