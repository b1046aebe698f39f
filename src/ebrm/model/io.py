"""The refined-model directory (DESIGN §3 [contract]) as a whole: `save_pretrained` writes
config.json, energy_head.safetensors, README.md and the references into a new directory and
swaps it in; `load_pretrained` reads them back with every file checked. Each file's reader
and writer, and its format checks, are in `ebrm.model.files`.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ebrm._device import resolve_device
from ebrm._io import atomic_write_text, recover_replaced_directory
from ebrm.energy.config import EnergyHeadConfig
from ebrm.energy.head import EnergyHead
from ebrm.errors import ArtifactJSONError, ConfigError
from ebrm.model import files
from ebrm.model.base_rm import resolve_base_rm_path
from ebrm.model.files import CARD_NAME, CONFIG_NAME, FORMAT_NAME, FORMAT_VERSION, WEIGHTS_NAME
from ebrm.refine.config import RefineConfig

if TYPE_CHECKING:
    import torch

    from ebrm.model.refined import EnergyRewardModel

logger = logging.getLogger(__name__)

__all__ = ["CARD_NAME", "CONFIG_NAME", "FORMAT_NAME", "FORMAT_VERSION", "WEIGHTS_NAME"]
_KNOWN_KEYS = {"format", "format_version", "versions", "head", "normalizer", "refine"}
_KNOWN_KEYS |= {"base_rm", "train", "weights_sha256"}


def config_dict(model: EnergyRewardModel) -> dict:
    """The JSON-serialisable content of config.json."""
    from ebrm._version import version_info

    config = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "versions": version_info(),
        "head": model.head.config.to_dict(),
        "normalizer": model.normalizer.to_dict(),
        "refine": model.refine_config.to_dict(),
        "base_rm": model.base_rm_info,
        "train": model.train_info,
    }
    return _jsonable(config, "config")


def save_pretrained(model: EnergyRewardModel, directory: str | os.PathLike) -> Path:
    """Write the refined-model directory atomically (`EnergyRewardModel.save_pretrained`)."""
    from ebrm.model.card import render_model_card

    config = config_dict(model)  # validated before anything is written
    config["base_rm"] = _with_relative_path(config.get("base_rm") or {}, Path(directory))
    json.dumps(config, allow_nan=False)  # fail on NaN before anything is written

    def build(tmp: Path) -> None:
        weights_sha256 = files.save_weights(model.head, tmp / WEIGHTS_NAME)
        files.write_config(tmp / CONFIG_NAME, {**config, "weights_sha256": weights_sha256})
        report = None if model.references is None else model.references.report
        atomic_write_text(tmp / CARD_NAME, render_model_card(config, report))
        if model.references is not None:
            files.save_references(tmp, model.references)

    return files.replace_directory(directory, build, ours=files.OWN_FILES)


def load_pretrained(
    cls: type[EnergyRewardModel],
    directory: str | os.PathLike,
    device: str | torch.device | None,
    base_rm: Any,
) -> EnergyRewardModel:
    """`cls` read from a refined-model directory: `EnergyRewardModel.from_pretrained`,
    which documents the arguments and errors."""
    from ebrm.energy.normalize import RewardNormalizer

    directory = Path(directory)
    recover_replaced_directory(directory)  # a save killed between its two renames
    if not directory.is_dir():
        raise ConfigError(
            f"No refined-model directory at {directory}; pass the --out of `ebrm train`"
        )
    config_path = directory / CONFIG_NAME
    config = files.read_config(config_path)
    unknown = sorted(set(config) - _KNOWN_KEYS)
    if unknown:
        logger.warning("ignoring unknown keys in %s: %s", config_path, unknown)
    field = "head"
    try:
        head = EnergyHead(EnergyHeadConfig.from_dict(config["head"]))
        field = "normalizer"
        normalizer = RewardNormalizer.from_dict(config["normalizer"])
        field = "refine"
        refine_config = RefineConfig.from_dict(config.get("refine") or {})
    except (KeyError, TypeError, ConfigError) as exc:
        raise ArtifactJSONError(
            f"{config_path}: field {field!r} is invalid ({exc}); re-save or re-train the model"
        ) from exc
    files.load_weights(head, directory / WEIGHTS_NAME, sha256=config.get("weights_sha256"))
    head.to(resolve_device(device))
    return cls(
        head,
        normalizer,
        refine_config,
        resolve_base_rm_path(config.get("base_rm") or {}, directory),
        config.get("train") or {},
        base_rm=base_rm,
        references=files.load_references(directory),
    )


def _jsonable(value: Any, where: str) -> Any:
    """Plain JSON types; tensors/numpy become lists or numbers, non-finite floats None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _jsonable(value.tolist(), where)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise ConfigError(
        f"{where} holds a {type(value).__name__}, which cannot be written to config.json; "
        "store numbers, strings, lists or dicts"
    )


def _with_relative_path(info: dict, directory: Path) -> dict:
    """`info` plus `relative_path` (from the model directory) when the base RM is a local
    directory saved beside the model (e.g. runs/rm and runs/ebrm), so that moving both
    together keeps the model loadable."""
    path = info.get("name_or_path")
    if not path or not Path(path).is_dir():
        return info
    relative = os.path.relpath(Path(path).resolve(), Path(directory).resolve())
    if relative.startswith(os.path.join(os.pardir, os.pardir)):
        return info  # not beside the model: only the absolute path is meaningful
    return {**info, "relative_path": relative}
