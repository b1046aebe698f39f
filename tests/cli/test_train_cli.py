"""`ebrm train` and `ebrm score` on a feature store written by the real extraction code."""

import json

import pytest

from ebrm.cli import main


def test_train_and_score_help(capsys):
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--features" in out and "--objective" in out and "--no-filter" in out
    assert main(["score", "--help"]) == 0
    assert "--model" in capsys.readouterr().out


def test_train_then_score_a_feature_store(tmp_path, capsys):
    from tests.fakes import FakeRM, make_pairs

    from ebrm.features.extract import extract_features

    store = tmp_path / "store"
    extract_features(FakeRM(dim=8), make_pairs(60, duplicates=False), store, progress=False)
    out = tmp_path / "model"
    code = main(
        [
            "train",
            "--features",
            str(store),
            "--out",
            str(out),
            "--steps",
            "20",
            "--objective",
            "nce+bt",
            "--seed",
            "3",
            "--no-progress",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "validation pairwise accuracy" in printed and "base" in printed
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["config"]["objective"] == "nce+bt"
    assert config["train"]["config"]["max_steps"] == 20
    assert config["base_rm"]["name_or_path"] == "fake"
    # validation: whole prompts (make_pairs asks 5 prompts, 12 pairs each), none trained on
    prompts = config["train"]["prompts"]
    assert len(prompts["validation"]) == 1 and len(prompts["train"]) == 4
    assert not set(prompts["train"]) & set(prompts["validation"])
    assert config["train"]["validation"]["pairs"] == 12 and config["train"]["train_pairs"] == 48
    assert (out / "history.json").exists() and (out / "training_curve.png").exists()
    # the references, fitted on the same 48 training and 12 validation pairs
    refs = json.loads((out / "references.json").read_text())
    assert set(refs["references"]) == {"laplace", "ensemble"}
    assert refs["report"]["train_pairs"] == 48 and refs["report"]["validation_pairs"] == 12

    scores = tmp_path / "scores.jsonl"
    assert (
        main(
            [
                "score",
                "--model",
                str(out),
                "--features",
                str(store),
                "--out",
                str(scores),
                "--no-progress",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in scores.read_text().splitlines()]
    from ebrm.features.store import load_features

    features = load_features(store)
    assert len(rows) == features.embeddings.shape[0]
    assert {"base", "refined", "mean", "std", "q05", "q95"} <= set(rows[0])
    assert {"laplace", "laplace_std", "ensemble", "ensemble_lcb"} <= set(rows[0])
    # base is the stored reward in normalised units, refined is the posterior mean
    norm = config["normalizer"]
    expected = norm["scale"] * (features.rewards[1] - norm["mean"]) / (norm["std"] + 1e-8)
    assert rows[1]["base"] == pytest.approx(float(expected), rel=1e-5)
    assert all(r["q05"] <= r["mean"] <= r["q95"] for r in rows)


def test_train_rejects_unknown_objective(tmp_path, capsys):
    from tests.fakes import FakeRM, make_pairs

    from ebrm.features.extract import extract_features

    store = tmp_path / "store"
    extract_features(FakeRM(dim=8), make_pairs(10, duplicates=False), store, progress=False)
    code = main(
        ["train", "--features", str(store), "--out", str(tmp_path / "m"), "--objective", "dpo"]
    )
    assert code == 2
    assert (
        "--objective: 'dpo' is not one of 'nce+', 'nce+bt', 'nce+margin'" in capsys.readouterr().err
    )
