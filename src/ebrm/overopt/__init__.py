"""Reward over-optimisation: the gold reward of policies that optimise a proxy reward.

`run_overopt` (the `ebrm overopt` command) builds large candidate pools from real responses
and deterministic edits, trains gold and noisy proxies on one frozen encoder, and measures
best-of-n, the KL-regularised optimum (at matched KL) and a policy-gradient run for every
proxy: base, EBRM refined and conservative, and the references. The estimators are pure
functions (`policies.py`, `policy_gradient.py`, `curves.py`).
"""

from __future__ import annotations

from ebrm._lazy import lazy_getattr

# name -> module: imported on first use, so `ebrm overopt` can check its options (and the
# CLI read OveroptConfig's defaults) without importing torch
_EXPORTS = {
    "OveroptConfig": "config",
    "Curve": "curves",
    "bon_curve": "curves",
    "kl_regularised_curve": "curves",
    "policy_gradient_curve": "curves",
    "beta_for_kl": "policies",
    "bon_kl": "policies",
    "bon_policy": "policies",
    "kl_from_uniform": "policies",
    "kl_regularised_policy": "policies",
    "policy_gradient": "policy_gradient",
    "run_overopt": "run",
}
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, {k: f"{__name__}.{v}" for k, v in _EXPORTS.items()})
