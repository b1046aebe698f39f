"""A response's embedding, base reward and refined reward do not depend on how it was
batched, through `extract`, `score`, `eval` and the server's micro-batcher (32 concurrent
clients in different compositions): max abs difference <= 1e-5 in float32 from the
independent reference, the raw HF model on each text alone (tests/rm/test_batch_invariance.py)
refined one row at a time. Every output records what it was computed with."""

from __future__ import annotations

import asyncio
import json
import random

import httpx
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from ebrm.data.types import Conversation, PreferencePair
from ebrm.features import extract_features
from ebrm.integrations.server import ServerConfig, create_app
from ebrm.model import EnergyRewardModel
from tests.integrations.serving import running_server
from tests.rm.test_batch_invariance import alone

TOL = 1e-5  # in the base RM's own units (embeddings, raw rewards)
# the posterior's argmax is ill-conditioned where the posterior is flat (a random head):
# float32 rounding of f, which varies with a matmul's row count, moves it by up to ~1e-3
LOOSE = {"mode": 1e-2}
# columns in the RM's own units; the others are normalised, y = s * (r - mean) / std: a
# difference in r reaches them multiplied by s / std (~5,000 for this random tiny RM)
RAW = {"base_raw"}
WORDS = ["reward", "energy", "model", "batch", "padding", "left", "right", "token", "mate"]


def conversations(n: int, seed: int) -> list[Conversation]:
    rng = random.Random(seed)
    return [
        Conversation(
            messages=(("user", " ".join(rng.choices(WORDS, k=rng.randint(1, 12)))),),
            response=" ".join(rng.choices(WORDS, k=rng.choice([1, 3, 8, 20, 45]))),
        )
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def setup(tiny_ebrm_dir):
    """The model, 24 pairs, and each response's reference record (alone, unpadded)."""
    model = EnergyRewardModel.from_pretrained(tiny_ebrm_dir, device="cpu")
    rm = model.base_rm
    convs = conversations(48, seed=0)
    pairs = [
        PreferencePair(chosen=convs[2 * i], rejected=convs[2 * i + 1], id=f"pair-{i}")
        for i in range(24)
    ]
    raw = AutoModelForSequenceClassification.from_pretrained(rm.name_or_path).eval()
    ref = [alone(raw, rm.tokenize([rm.format(c)])[0]) for c in convs]
    emb = torch.stack([e for e, _ in ref])
    rew = torch.tensor([r for _, r in ref])
    records = [model.refine(emb[i : i + 1], rew[i : i + 1]).to_records()[0] for i in range(48)]
    return model, convs, pairs, emb, rew, records


def assert_same_record(got: dict, want: dict, gain: float) -> None:
    """Every column within TOL in the RM's units (TOL * gain in normalised units)."""
    for key, value in want.items():
        if isinstance(value, float) and got.get(key) is not None:
            tol = TOL if key in RAW else TOL * max(1.0, gain)
            assert abs(got[key] - value) <= LOOSE.get(key, tol), key


def gain_of(model) -> float:
    return model.normalizer.scale / (model.normalizer.std_ + 1e-8)


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_extract_and_score_do_not_depend_on_the_batch_size(setup, tmp_path, batch_size):
    from ebrm.energy.scoring import score_store, scores_meta_path

    model, convs, pairs, emb, rew, records = setup
    store = extract_features(
        model.base_rm, pairs, tmp_path / "store", batch_size=batch_size,
        storage_dtype="float32", progress=False,
    )  # fmt: skip
    table = store.load()
    for i, pair in enumerate(pairs):
        for k, rows in ((2 * i, table.chosen), (2 * i + 1, table.rejected)):
            assert pair.chosen is convs[2 * i] and pair.rejected is convs[2 * i + 1]
            row = int(rows[i])
            assert float((table.embeddings[row] - emb[k]).abs().max()) <= TOL
            assert abs(float(table.rewards[row]) - float(rew[k])) <= TOL
    out = tmp_path / "scores.jsonl"
    score_store(model, store, out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    for i in range(len(pairs)):
        for k, rows in ((2 * i, table.chosen), (2 * i + 1, table.rejected)):
            assert_same_record(lines[int(rows[i])], records[k], gain_of(model))
    meta = json.loads(scores_meta_path(out).read_text())
    rm = model.base_rm
    assert meta["computed_with"] == {
        "dtype": "float32", "max_length": rm.max_length, "truncation_side": rm.truncation_side,
        "padding_side": rm.padding_side, "batch_size": batch_size,
    }  # fmt: skip


def test_eval_records_what_it_computed_with(setup, tmp_path):
    from ebrm.evaluation import evaluate

    model, _, pairs, _, _, _ = setup
    evaluate(model, "pairwise", pairs, tmp_path, batch_size=5, n_boot=20, progress=False,
             make_figures=False)  # fmt: skip
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    rm = model.base_rm
    assert metrics["computed_with"] == {
        "dtype": "float32", "max_length": rm.max_length, "truncation_side": rm.truncation_side,
        "padding_side": rm.padding_side, "batch_size": 5,
    }  # fmt: skip


def test_the_server_with_32_concurrent_clients(setup):
    """Each client's responses come back as scored alone, whatever requests shared its
    micro-batch: three rounds, each grouping the 48 responses differently over 32 clients."""
    model, convs, _, _, _, records = setup
    config = ServerConfig(max_batch_size=48, max_wait_ms=30, forward_batch_size=16,
                          forward_overhead_tokens=0)  # fmt: skip
    app = create_app(model, config)
    items = [{"prompt": c.messages[0][1], "response": c.response} for c in convs]
    rng = random.Random(1)
    with running_server(app) as url:
        info = httpx.get(f"{url}/info").json()
        rm = model.base_rm
        assert info["computed_with"] == {
            "dtype": "float32", "max_length": rm.max_length,
            "truncation_side": rm.truncation_side, "padding_side": rm.padding_side,
            "batch_size": 16,
        }  # fmt: skip
        for _ in range(3):
            order = list(range(len(items)))
            rng.shuffle(order)
            cuts = sorted(rng.sample(range(1, len(items)), 31))  # 32 requests of 1+ items
            groups = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(items)], strict=True)]

            async def run(groups=groups):
                async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                    return await asyncio.gather(*[
                        client.post("/score", json={"items": [items[i] for i in g]})
                        for g in groups
                    ])  # fmt: skip

            for group, resp in zip(groups, asyncio.run(run()), strict=True):
                assert resp.status_code == 200
                for i, result in zip(group, resp.json()["results"], strict=True):
                    assert_same_record(result, records[i], gain_of(model))
