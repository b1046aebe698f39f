"""`EnergyRewardModel`: a frozen base RM's refinement, as one loadable artifact.

It bundles the energy head, the reward normaliser, the refinement settings and the
provenance of the base RM (name, revision, weight hash, ...) plus what training
recorded. `refine()` works on stored features; `score()` embeds conversations with the
base RM first. `save_pretrained` / `from_pretrained` read and write the refined-model
directory of DESIGN §3 (config.json, energy_head.safetensors, README.md; no pickle).

The class is `ebrm.model.refined`; the directory `ebrm.model.io` (save and load as a
whole), each of its files, their formats and checks `ebrm.model.files`, the model card
`ebrm.model.card`; the checks and lazy loading of its base RM `ebrm.model.base_rm`. No
other package reads or writes a file of the directory.
"""

from __future__ import annotations

from ebrm._lazy import lazy_getattr

# name -> module, imported on first use: the CLI reads this package's names and
# defaults (ebrm.cli) without importing torch
_EXPORTS = {
    "CARD_NAME": "ebrm.model.names",
    "CONFIG_NAME": "ebrm.model.names",
    "FORMAT_NAME": "ebrm.model.names",
    "FORMAT_VERSION": "ebrm.model.io",
    "WEIGHTS_NAME": "ebrm.model.names",
    "EnergyRewardModel": "ebrm.model.refined",
    "RefinedRewards": "ebrm.refine.results",
}
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
