"""`ebrm split` then the CLI chain: held-out files by prompt, and `ebrm eval` warning (or,
with --strict, refusing) when evaluation prompts were trained or validated on."""

from __future__ import annotations

import json

import pytest

from ebrm.cli import main
from ebrm.data import load_pairs, prompt_hash


@pytest.fixture(scope="module")
def chain(tmp_path_factory, tiny_rm_dir):
    root = tmp_path_factory.mktemp("split-chain")
    # 30 prompts, some asked twice (so grouping by prompt matters)
    rows = [
        {"prompt": f"question {i % 30}", "chosen": f"good answer {i}", "rejected": f"bad {i}",
         "id": f"row-{i}"}
        for i in range(45)
    ]  # fmt: skip
    data = root / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    split = root / "split"
    assert main(["split", "--data", str(data), "--out", str(split), "--test-fraction", "0.3",
                 "--validation-fraction", "0.2", "--seed", "1"]) == 0  # fmt: skip
    store, model = root / "store", root / "model"
    common = ["--max-length", "32", "--device", "cpu", "--no-progress"]
    assert main(["extract", "--rm", str(tiny_rm_dir), "--data", str(split / "train.jsonl"),
                 "--out", str(store), *common[:2]]) == 0  # fmt: skip
    assert main(["train", "--features", str(store), "--out", str(model), "--steps", "3",
                 "--device", "cpu", "--no-progress"]) == 0  # fmt: skip
    return {"root": root, "data": data, "split": split, "model": model}


def test_split_files_hold_every_pair_once_and_no_prompt_twice(chain):
    original = load_pairs(str(chain["data"]))
    parts = {
        n: load_pairs(str(chain["split"] / f"{n}.jsonl")) for n in ("train", "validation", "test")
    }
    ids = sorted(p.id for part in parts.values() for p in part)
    assert ids == sorted(p.id for p in original)
    by_id = {p.id: p for p in original}
    for part in parts.values():  # the round trip keeps conversations (and so prompt hashes)
        for pair in part:
            assert (pair.chosen, pair.rejected) == (by_id[pair.id].chosen, by_id[pair.id].rejected)
    prompts = {n: {prompt_hash(p) for p in part} for n, part in parts.items()}
    assert not prompts["train"] & prompts["test"] and not prompts["train"] & prompts["validation"]
    assert not prompts["validation"] & prompts["test"]
    info = json.loads((chain["split"] / "split.json").read_text())
    assert info["pairs"] == {n: len(part) for n, part in parts.items()}


def test_split_refuses_to_replace_without_overwrite(chain, capsys):
    argv = ["split", "--data", str(chain["data"]), "--out", str(chain["split"])]
    assert main(argv) == 2
    assert "already holds a result; pass --overwrite" in capsys.readouterr().err


def _eval(chain, data, out, *extra):
    return main(["eval", "--model", str(chain["model"]), "--benchmark", "pairwise",
                 "--data", str(data), "--out", str(chain["root"] / out), "--n-boot", "100",
                 "--no-plots", "--device", "cpu", "--no-progress", *extra])  # fmt: skip


def test_eval_warns_with_the_overlap_count_and_strict_refuses(chain, capsys):
    train = chain["split"] / "train.jsonl"
    n = len(load_pairs(str(train)))
    assert _eval(chain, train, "eval-train") == 0
    err = capsys.readouterr().err
    assert (
        f"{n} of {n} rows of --data {train} have a prompt the model trained or validated on" in err
    )
    assert _eval(chain, train, "eval-strict", "--strict") == 2
    lines = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert lines[-1].startswith("error: ") and "--strict refuses" in lines[-1]
    assert not (chain["root"] / "eval-strict" / "metrics.json").exists()


def test_eval_on_the_test_file_is_held_out(chain, capsys):
    test = chain["split"] / "test.jsonl"
    assert _eval(chain, test, "eval-test", "--strict") == 0
    assert "trained or validated on" not in capsys.readouterr().err
    metrics = json.loads((chain["root"] / "eval-test" / "metrics.json").read_text())
    assert metrics["data"] == str(test) and metrics["n"] == len(load_pairs(str(test)))


def _extract(chain, rm, data, out, *extra):
    return main(["extract", "--rm", str(rm), "--data", str(data), "--out", str(out),
                 "--max-length", "32", "--device", "cpu", "--no-progress", *extra])  # fmt: skip


def _trained_validation_prompts(model_dir) -> set[str]:
    info = json.loads((model_dir / "config.json").read_text())
    return set(info["train"]["prompts"]["validation"])


def test_validation_data_as_a_store_or_as_a_file(chain, tiny_rm_dir, capsys):
    root, split = chain["root"], chain["split"]
    val_prompts = {prompt_hash(p) for p in load_pairs(str(split / "validation.jsonl"))}
    train = ["train", "--steps", "3", "--device", "cpu", "--no-progress"]
    # a store of the validation file
    assert _extract(chain, tiny_rm_dir, split / "validation.jsonl", root / "store-val") == 0
    argv = [*train, "--features", str(root / "store"), "--out", str(root / "m-store")]
    assert main([*argv, "--validation-data", str(root / "store-val")]) == 0
    assert _trained_validation_prompts(root / "m-store") == val_prompts
    # a file whose prompts select the validation pairs from one store of everything
    assert _extract(chain, tiny_rm_dir, chain["data"], root / "store-all") == 0
    argv = [*train, "--features", str(root / "store-all"), "--out", str(root / "m-file")]
    assert main([*argv, "--validation-data", str(split / "validation.jsonl")]) == 0
    assert _trained_validation_prompts(root / "m-file") == val_prompts
    capsys.readouterr()
    # a file none of whose prompts is in the store
    argv = [*train, "--features", str(root / "store"), "--out", str(root / "m-none")]
    assert main([*argv, "--validation-data", str(split / "validation.jsonl")]) == 2
    assert "has a prompt of --validation-data" in capsys.readouterr().err


def test_inputs_from_another_base_rm_setting_are_refused(chain, tiny_rm_dir, capsys):
    root = chain["root"]
    other = root / "store-24"
    assert (
        _extract(chain, tiny_rm_dir, chain["split"] / "test.jsonl", other, "--max-length", "24")
        == 0
    )
    capsys.readouterr()
    argv = ["score", "--model", str(chain["model"]), "--features", str(other)]
    assert main([*argv, "--out", str(root / "s.jsonl"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "different base RMs or settings (max length 32 vs 24)" in err
    assert not (root / "s.jsonl").exists()
    argv = ["train", "--features", str(root / "store"), "--out", str(root / "m-24")]
    assert main([*argv, "--validation-data", str(other), "--steps", "3"]) == 2
    assert "max length 32 vs 24" in capsys.readouterr().err


def test_the_model_card_verdict_is_the_paired_interval_on_validation(chain):
    card = (chain["model"] / "README.md").read_text()
    info = json.loads((chain["model"] / "config.json").read_text())["train"]
    delta = info["validation"]["delta"]
    assert "On the validation split: " in card and "McNemar p = " in card
    assert f"n = {delta['n']} validation pairs" in card
    lo, hi = delta["ci95"]
    expected = "helped" if lo > 0 else ("hurt" if hi < 0 else "No detectable difference")
    assert expected in info["verdict"]


def test_verdict_from_validation_pairs_counts_discordant_pairs():
    import torch

    from ebrm.evaluation.model_verdict import record_validation_verdict
    from ebrm.features.table import PairFeatures

    # 4 pairs; base right on pairs 0, 1; "refined" right on pairs 0, 2, 3
    base = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0])
    refined = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    chosen, rejected = torch.tensor([0, 2, 4, 6]), torch.tensor([1, 3, 5, 7])
    features = PairFeatures(torch.zeros(8, 2), base, chosen, rejected)

    class Model:
        train_info: dict = {}

        def refine(self, embeddings, base_rewards):
            assert torch.equal(base_rewards, base)
            return type("R", (), {"reward": refined})()

    model = Model()
    sentence = record_validation_verdict(model, features)
    delta = model.train_info["validation"]["delta"]
    assert (delta["improved"], delta["worsened"], delta["n"]) == (2, 1, 4)
    assert delta["delta"] == 0.25  # 3/4 - 2/4
    assert sentence.startswith("No detectable difference") and "interval includes 0, so" in sentence
