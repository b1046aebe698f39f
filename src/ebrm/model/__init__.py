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

from ebrm.model.io import CARD_NAME, CONFIG_NAME, FORMAT_NAME, FORMAT_VERSION, WEIGHTS_NAME
from ebrm.model.refined import EnergyRewardModel
from ebrm.refine.results import RefinedRewards

__all__ = [
    "CARD_NAME",
    "CONFIG_NAME",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "EnergyRewardModel",
    "RefinedRewards",
]
