"""Where refined rewards are used: TRL, an HTTP reward server (OpenRLHF), verl, best-of-n.

Modules (imported on demand, so optional dependencies load only when used):
  * `ebrm.integrations.trl`: `EBRMRewardFunction`, `ebrm_reward` (TRL `reward_funcs`)
  * `ebrm.integrations.server`: `create_app`, `ServerConfig`, `run_server` (`ebrm serve`)
  * `ebrm.integrations.verl`: `compute_score`, `compute_score_batch`
  * `ebrm.integrations.best_of_n`: `select_best` (`ebrm bon`); the best-of-n estimator is
    `ebrm.evaluation.best_of_n`
"""

from __future__ import annotations

from ebrm._lazy import lazy_getattr

# name -> module, imported on first use: the CLI reads this package's names and
# defaults (ebrm.cli) without importing torch
_EXPORTS = {
    "Scorer": "ebrm.integrations._common",
}
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
