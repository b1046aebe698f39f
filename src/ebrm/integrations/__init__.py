"""Where refined rewards are used: TRL, an HTTP reward server (OpenRLHF), verl, best-of-n.

Modules (imported on demand, so optional dependencies load only when used):
  * `ebrm.integrations.trl`: `EBRMRewardFunction`, `ebrm_reward` (TRL `reward_funcs`)
  * `ebrm.integrations.server`: `create_app`, `ServerConfig`, `run_server` (`ebrm serve`)
  * `ebrm.integrations.verl`: `compute_score`, `compute_score_batch`
  * `ebrm.integrations.best_of_n`: `select_best`, `expected_best_of_n`, `best_of_n_curve`
"""

from ebrm.integrations._common import Scorer

__all__ = ["Scorer"]
