"""Evaluation a chunk at a time: the same files as one whole table, bounded memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ebrm.data.types import Conversation, PreferencePair
from ebrm.evaluation import Units, evaluate
from ebrm.evaluation.runner import refine_and_evaluate
from ebrm.evaluation.streaming import _Pairs


def _files(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("benchmark", ["pairwise", "rm-bench"])
def test_chunks_write_the_same_files_as_one_table(tmp_path, benchmark):
    from tests.golden.regenerate import golden_inputs, golden_model

    model = golden_model()  # a grid refiner with a Laplace and an ensemble reference
    emb, raw = golden_inputs(700)
    if benchmark == "pairwise":
        # neighbours, then pairs whose rows lie far apart (held across chunks), and rows
        # 650.. unused
        far = np.random.default_rng(0).permutation(600)
        units = Units.of(np.r_[0:600:2, far[:40]], np.r_[1:600:2, far[40:80]])
    else:
        units = Units.of(
            np.arange(300).reshape(-1, 3), np.arange(300, 600).reshape(-1, 3),
            labels=["chat", "math"] * 50,
        )  # fmt: skip
    for reward in ("refined", "conservative"):
        out = {}
        for chunk in (64, 128, 10_000):
            folder = tmp_path / f"{reward}-{chunk}"
            refine_and_evaluate(
                model, benchmark, units, emb, raw, reward=reward, out_dir=folder, n_boot=30,
                make_figures=False, chunk_rows=chunk,
            )  # fmt: skip
            out[chunk] = _files(folder)
        assert out[64] == out[10_000] and out[128] == out[10_000]
        if benchmark == "pairwise":
            assert {"examples-laplace.jsonl", "examples-ensemble.jsonl"} <= set(out[64])


def test_eval_of_texts_embeds_each_chunk_once_and_matches_one_chunk(tmp_path, tiny_rm_dir):
    from ebrm.model import EnergyRewardModel
    from tests.integrations.tiny_ebrm import make_tiny_ebrm

    model = EnergyRewardModel.from_pretrained(
        make_tiny_ebrm(tmp_path / "model", tiny_rm_dir), device="cpu"
    )
    pairs = [
        PreferencePair(
            chosen=Conversation.from_prompt(f"q{i % 7}", "good answer " * (1 + i % 3) + str(i)),
            rejected=Conversation.from_prompt(f"q{i % 7}", f"bad {i}" if i % 5 else "bad"),
            id=str(i),
        )
        for i in range(90)
    ]  # 90 pairs; "bad" repeats under the same prompt
    unique = len({c for p in pairs for c in (p.chosen, p.rejected)})
    assert unique > 128
    calls = []
    embed = model.base_rm.embed_conversations

    def counting(convs, **kw):
        calls.append(len(convs))
        return embed(convs, **kw)

    model.base_rm.embed_conversations = counting
    got = {}
    for chunk in (64, 10_000):
        folder = tmp_path / f"eval-{chunk}"
        # one text per forward pass, so that no embedding depends on the texts padded with it
        evaluate(model, "pairwise", pairs, folder, batch_size=1, n_boot=30, progress=False,
                 make_figures=False, chunk_rows=chunk)  # fmt: skip
        got[chunk] = _files(folder)
    assert calls == [64, 64, unique - 128, unique]  # each unique response once per run
    assert got[64] == got[10_000]


def test_pairs_hold_only_rows_a_waiting_pair_needs():
    n = 1000
    # neighbouring pairs, and one row (0) that every 100th pair compares with
    a = np.arange(0, n, 2)
    b = np.arange(1, n, 2)
    b[::100] = 0
    pairs = _Pairs(Units.of(a, b), n)
    emb = torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 3)
    most, seen = 0, []
    for start in range(0, n, 64):
        pairs.hold(start, emb[start : start + 64])
        most = max(most, len(pairs.held))
        for block, ea, eb in pairs.ready(start + 64):
            seen.append((block, ea[:, 0].long().numpy(), eb[:, 0].long().numpy()))
    assert [s for s, _, _ in seen] == pairs.blocks  # every block once, in order
    assert np.array_equal(np.concatenate([x for _, x, _ in seen]), a)
    assert np.array_equal(np.concatenate([y for _, _, y in seen]), b)
    assert not pairs.held
    # a block of 2048 pairs waits for its last row: at most its rows are held
    assert most <= n
