"""A refined model saved beside its base RM keeps finding it after both move together."""

from __future__ import annotations

import json
import shutil

from ebrm.model import EnergyRewardModel
from tests.integrations.tiny_ebrm import make_tiny_ebrm


def test_base_rm_beside_the_model_is_found_after_moving_both(tmp_path, tiny_rm_dir):
    runs = tmp_path / "runs"
    shutil.copytree(tiny_rm_dir, runs / "rm")
    make_tiny_ebrm(runs / "ebrm", runs / "rm")
    recorded = json.loads((runs / "ebrm" / "config.json").read_text())["base_rm"]
    assert recorded["relative_path"] == "../rm"
    moved = tmp_path / "elsewhere"
    shutil.move(runs, moved)  # the recorded absolute path no longer exists
    model = EnergyRewardModel.from_pretrained(moved / "ebrm", device="cpu")
    assert model.base_rm_info["name_or_path"] == str((moved / "rm").resolve())
    assert model.base_rm.hidden_size == model.embedding_dim  # loads, and the hash matches


def test_a_base_rm_far_from_the_model_keeps_only_its_absolute_path(tmp_path, tiny_rm_dir):
    make_tiny_ebrm(tmp_path / "a" / "b" / "ebrm", tiny_rm_dir)
    recorded = json.loads((tmp_path / "a" / "b" / "ebrm" / "config.json").read_text())["base_rm"]
    assert "relative_path" not in recorded
