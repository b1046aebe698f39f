"""Fixtures of the integration tests: a tiny real refined model on a tiny base RM."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integrations.tiny_ebrm import make_tiny_ebrm


@pytest.fixture(scope="session")
def tiny_ebrm_dir(tmp_path_factory, tiny_rm_dir) -> Path:
    """A refined-model directory: random energy head over the tiny Llama RM."""
    return make_tiny_ebrm(tmp_path_factory.mktemp("tiny-ebrm") / "model", tiny_rm_dir)
