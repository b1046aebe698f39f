"""Reference rewards beside base and refined: wiring, scaled-with-scaled calibration, verdicts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ebrm.data.types import Conversation, PreferencePair
from ebrm.evaluation import evaluate
from ebrm.evaluation.calibration import expected_calibration_error
from ebrm.evaluation.fair import BASE_CALIBRATED, raw_probability
from ebrm.evaluation.uncertainty import AXES
from ebrm.references import fit_references
from ebrm.refine.calibration import temperature_scale
from tests.fakes import FakeModel


def _pairs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    pairs, rows = [], []
    for i in range(n):
        cr, cb, rr, rb = rng.normal(0, 1, 4).round(3)
        rows.append((cr, cb, rr, rb))
        pairs.append(
            PreferencePair(
                chosen=Conversation.from_prompt(f"q{i}", f"r={cr} b={cb} chosen {i}"),
                rejected=Conversation.from_prompt(f"q{i}", f"r={rr} b={rb} rejected {i}"),
                id=str(i),
            )
        )
    return pairs, np.asarray(rows)


@pytest.fixture(scope="module")
def model_with_references():
    # references fitted on other pairs of the same kind (FakeModel's embedding: (raw, bonus))
    _, rows = _pairs(200, seed=1)
    emb = torch.tensor(np.concatenate([rows[:, :2], rows[:, 2:]]), dtype=torch.float32)
    n = len(rows)
    chosen, rejected = torch.arange(n), torch.arange(n, 2 * n)
    model = FakeModel()
    model.references = fit_references(
        emb, chosen[:150], rejected[:150], chosen[150:], rejected[150:],
        raw_rewards=emb[:, 0], ensemble_size=3,
    )  # fmt: skip
    return model


def test_references_are_scored_beside_base_and_refined(tmp_path, model_with_references):
    model = model_with_references
    pairs, rows = _pairs()
    m = evaluate(model, "pairwise", pairs, tmp_path, n_boot=100, progress=False)
    assert m["rewards"] == ["base", "refined", BASE_CALIBRATED, "laplace", "ensemble"]
    # the calibrated base ranks as the base does; its P is the base sigmoid at temperature T
    assert m[BASE_CALIBRATED]["accuracy"] == m["base"]["accuracy"]
    t = model.references.base_temperature
    p_raw = torch.sigmoid(torch.tensor(rows[:, 0] - rows[:, 2]))
    p_cal = temperature_scale(p_raw.double(), t).numpy()
    assert m[BASE_CALIBRATED]["ece"] == pytest.approx(expected_calibration_error(p_cal))
    # the references rank by their mean: a linear reward on (raw, bonus)
    laplace = model.references.rewards["laplace"]
    emb_c = torch.tensor(rows[:, :2], dtype=torch.float32)
    emb_r = torch.tensor(rows[:, 2:], dtype=torch.float32)
    right = (laplace.predict(emb_c)[0] > laplace.predict(emb_r)[0]).double().mean()
    assert m["laplace"]["accuracy"] == pytest.approx(float(right))
    # raw and scaled calibration per reward, scaled with scaled in the comparison
    cal = m["calibration"]
    assert set(cal) == {"base", "refined", "laplace", "ensemble"}
    assert cal["base"]["temperature"] == t
    assert cal["base"]["raw"]["ece"] == pytest.approx(m["base"]["ece"], abs=1e-6)
    assert cal["base"]["scaled"]["ece"] == pytest.approx(m[BASE_CALIBRATED]["ece"])
    unc = m["uncertainty"]
    assert unc["baseline"] == BASE_CALIBRATED and "base" not in unc["rewards"]
    assert set(unc["verdicts"]) == set(AXES) and len(unc["sentences"]) == len(AXES)
    for axis, v in unc["verdicts"].items():
        assert v["best_reference"] in (BASE_CALIBRATED, "laplace", "ensemble"), axis
    assert (tmp_path / "risk_coverage.png").is_file()
    assert "refined - " in (tmp_path / "report.md").read_text()


def test_conservative_kind_scores_references_by_mean_minus_k_std(model_with_references):
    pairs, rows = _pairs()
    m = evaluate(
        model_with_references, "pairwise", pairs, None, n_boot=50, progress=False,
        reward="conservative",
    )  # fmt: skip
    ens = model_with_references.references.rewards["ensemble"]
    k = model_with_references.refine_config.conservative_k
    score = []
    for side in (rows[:, :2], rows[:, 2:]):
        mean, std = ens.predict(torch.tensor(side, dtype=torch.float32))
        score.append(mean - k * std)
    assert m["ensemble"]["accuracy"] == pytest.approx(float((score[0] > score[1]).double().mean()))


def test_raw_probability_undoes_the_temperature():
    p = np.array([0.01, 0.3, 0.5, 0.8, 0.999])
    scaled = temperature_scale(torch.tensor(p), 2.5).numpy()
    assert np.allclose(raw_probability(scaled, 2.5), p, atol=1e-9)
