"""The energy head's training vocabulary, importable without torch.

`TrainConfig` checks its `objective` against `OBJECTIVES`, `make_objective` builds one of
them, and `ebrm train --objective` offers exactly these names.
"""

from __future__ import annotations

from typing import Literal, get_args

ObjectiveName = Literal["nce+", "nce+bt", "nce+margin"]
"""nce+ is the paper's (DESIGN §1.5); nce+bt and nce+margin let the labels shape the density."""
OBJECTIVES: tuple[str, ...] = get_args(ObjectiveName)

PresetName = Literal["small-data", "paper", "large-data"]
"""A named `TrainConfig` (`ebrm.energy.presets.PRESETS`)."""
PRESET_NAMES: tuple[str, ...] = get_args(PresetName)
DEFAULT_PRESET: PresetName = "small-data"  # what `ebrm train` and the pipeline use unless told
