"""experiments/run.py: which (noise, variant, seed) cells a command plans."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.scripts import load_script

_DIR = Path(__file__).resolve().parents[1] / "experiments"


@pytest.fixture(scope="module")
def run():
    sys.path.insert(0, str(_DIR))  # run.py imports its siblings (embeddings, heads, report)
    try:
        return load_script(_DIR / "run.py", "experiments_run", register=True)
    finally:
        sys.path.remove(str(_DIR))


def _jobs(tiers):
    return [job for tier in tiers for job in tier]


def test_only_the_requested_noise_rates_are_planned(run):
    # a process for the noisy fine-tuned RMs must not also fine-tune the clean ones
    jobs = _jobs(run.plan([0.4], [0, 1], ["default"]))
    assert jobs == [(0.4, "default", 0), (0.4, "default", 1)]
    jobs = _jobs(run.plan([0.0], [2], ["default"]))
    assert jobs == [(0.0, "default", 2)]


def test_clean_cells_come_before_noisy_ones_and_every_pair_is_planned_once(run):
    jobs = _jobs(run.plan([0.0, 0.4], [0, 1, 2], ["default"]))
    expected = [(n, "default", s) for n in (0.0, 0.4) for s in (0, 1, 2)]
    assert jobs == expected
    every = _jobs(run.plan([0.0, 0.1], [0, 1], None))
    assert len(every) == len(set(every))
    assert {v for _, v, _ in every} == {*run.VARIANTS, *run.REFERENCES}
