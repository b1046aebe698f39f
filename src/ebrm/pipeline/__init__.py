"""The end-to-end job as one library function: data -> base RM -> features -> EBRM -> eval.

`run_pipeline` is what `ebrm demo` runs and what the experiments build on:

1. **data**: the pairs (default: the 300 LLaMA-Factory demo pairs) split by prompt into
   train / validation / test with a seed;
2. **base RM**: a Bradley-Terry RM trained on the train split (`ebrm.rm.train_bt`);
3. **features**: one feature store of every pair (`ebrm.features`, resumable);
4. **EBRM**: the energy head trained on the train split, its checkpoint chosen on *our*
   validation split (`ebrm.energy.train_energy_head(..., validation=...)`), then its
   refined-reward method and `p_better` temperature on the same pairs
   (`ebrm.model.EnergyRewardModel.from_training`);
5. **eval**: base vs refined on the held-out test split (`ebrm.evaluation`): metrics.json,
   report.md, plots, and `scores.json` with every pair's rewards.

Rerunning with the same `out` reuses a finished stage when its inputs are unchanged
(recorded in `pipeline_state.json`) and redoes it from scratch otherwise.
"""

from __future__ import annotations

from ebrm._lazy import lazy_getattr

# name -> module, imported on first use: the CLI reads this package's names and
# defaults (ebrm.cli) without importing torch
_EXPORTS = {
    "PipelineConfig": "ebrm.pipeline.config",
    "PipelineResult": "ebrm.pipeline.run",
    "default_base_model": "ebrm.pipeline.run",
    "evaluate_split": "ebrm.pipeline.run",
    "run_pipeline": "ebrm.pipeline.run",
}
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
