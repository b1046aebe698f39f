"""The getting-started page's Python example runs as written on a store the CLI wrote
(issue 25, item 6): it embeds nothing but the one new text it scores, holds data out as
`ebrm split` does, and returns plain floats."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ebrm.cli import main
from ebrm.data import load_pairs, prompt_hash, split_pairs

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "getting-started.md"
PRESET = 'TrainConfig.preset("small-data", seed=0)'


def python_block() -> str:
    section = PAGE.read_text("utf-8").split("## From Python\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```python\n(.*?)^```", section, re.S | re.M)
    assert len(blocks) == 1, "the From Python section shows one Python block"
    return blocks[0]


def _write_pairs(path: Path, n_prompts: int = 24) -> None:
    rows = []
    for p in range(n_prompts):
        for k in range(2):  # two pairs per prompt: a split must keep them together
            rows.append({
                "prompt": f"Question {p}: how do I do thing {p}?",
                "chosen": f"A careful, correct answer {k} to question {p}, with steps.",
                "rejected": f"No {k}.",
            })  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")


def test_the_python_example_reuses_the_cli_store_and_holds_data_out(
    tmp_path, monkeypatch, tiny_rm_dir
):
    monkeypatch.chdir(tmp_path)
    _write_pairs(tmp_path / "pairs.jsonl")
    assert main(["extract", "--rm", str(tiny_rm_dir), "--data", "pairs.jsonl",
                 "--out", "runs/features", "--no-progress"]) == 0  # fmt: skip

    import ebrm.features.extract

    def no_extraction(*args, **kwargs):
        raise AssertionError("the example must not extract features again")

    monkeypatch.setattr(ebrm.features.extract, "extract_features", no_extraction)
    code = python_block()
    assert PRESET in code
    # the same code, a training budget a tiny test can afford
    code = code.replace(PRESET, PRESET[:-1] + ", max_steps=40, min_steps=0, eval_every=20)")
    namespace: dict = {}
    exec(compile(code, str(PAGE), "exec"), namespace)  # noqa: S102

    # held out as `ebrm split --seed 0` splits the same file: the same prompts in each part
    pairs = load_pairs(tmp_path / "pairs.jsonl")
    expected = split_pairs(pairs, test_fraction=0.2, validation_fraction=0.1, seed=0)
    for part, want in zip(("train", "val", "test"), expected, strict=True):
        got = namespace[part].prompt_hashes
        assert sorted(got) == sorted(prompt_hash(p) for p in want), part
    assert not set(namespace["test"].prompt_hashes) & set(namespace["train"].prompt_hashes)

    # plain Python numbers, and the fields the page names
    record = namespace["record"]
    for name in ("refined", "conservative", "spread", "q05", "q95"):
        assert type(record[name]) is float, name
    assert record["q05"] <= record["q95"] and record["spread"] >= 0
    # the reported accuracy is the share of test pairs whose chosen row scores higher
    test, out = namespace["test"], namespace["out"]
    wins = [
        float(out.reward[c]) > float(out.reward[r])
        for c, r in zip(test.chosen.tolist(), test.rejected.tolist(), strict=True)
    ]
    assert namespace["refined_right"].mean().item() == pytest.approx(sum(wins) / len(wins))
    assert (tmp_path / "runs" / "ebrm-py" / "config.json").is_file()
