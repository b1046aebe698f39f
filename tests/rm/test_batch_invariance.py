"""A text's embedding and reward do not depend on its batch-mates, the batch size, the
padding side or the order (float32, max abs difference <= 1e-5).

The reference is independent of `BaseRewardModel`'s batching and pooling: a freshly loaded
copy of the HF model (its config as saved) run on each text alone, one unpadded row; the
reward is its own logit and the embedding is its score head's input at the token whose
head output is that logit.
"""

from __future__ import annotations

import random

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from ebrm.rm import BaseRewardModel
from tests.tiny_models import make_tiny_rm, minilm_path

TOL = 1e-5
WORDS = [
    "reward",
    "energy",
    "model",
    "head",
    "token",
    "pad",
    "batch",
    "left",
    "right",
    "mate",
    "order",
    "float",
]


def sample_texts(n: int, seed: int) -> list[str]:
    """Texts of 1 to 60 words; from 5 texts on, two end with [SEP] spelled out."""
    rng = random.Random(seed)
    sizes = [1, 2, 5, 9, 20, 40, 60]
    texts = [" ".join(rng.choices(WORDS, k=rng.choice(sizes))) for _ in range(n)]
    if n >= 5:
        texts[1] += " [SEP]"
        texts[4] = "[SEP] [SEP]"
    return texts


def _load(path, *, pad: str):
    """Tokenizer and model of `path` with the pad setting under test.

    pad: "own" (a [PAD] distinct from eos), "eos" (the config's pad id is the eos, [SEP],
    which ends every text), "none" (no pad id anywhere; ebrm pads with the eos).
    """
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    if pad in ("eos", "none"):
        tokenizer.eos_token = tokenizer.sep_token
    if pad == "eos":
        tokenizer.pad_token = tokenizer.eos_token
        model.config.pad_token_id = tokenizer.eos_token_id
    if pad == "none":
        tokenizer.pad_token = None
        model.config.pad_token_id = None
    return tokenizer, model


@torch.no_grad()
def alone(model, ids: list[int]) -> tuple[torch.Tensor, float]:
    """(embedding, reward) of one unpadded row by the model itself."""
    _, head = _score_head(model)
    captured = []
    handle = head.register_forward_hook(lambda _m, a, out: captured.append((a[0], out)))
    try:
        logit = model(input_ids=torch.tensor([ids])).logits[0, 0]
    finally:
        handle.remove()
    head_in, head_out = captured[0]
    if head_in.ndim == 2:  # pooled before the head ([CLS])
        return head_in[0].float(), float(logit)
    matches = (head_out[0, :, 0] == logit).nonzero()
    assert len(matches) >= 1  # the logit is the head's output at some token
    t = int(matches[-1])
    return head_in[0, t].float(), float(logit)


def _score_head(model):
    from ebrm.rm import find_score_head

    return find_score_head(model)


def make_rm(path, *, pad: str, side: str) -> BaseRewardModel:
    tokenizer, model = _load(path, pad=pad)
    return BaseRewardModel(model, tokenizer, name_or_path=str(path), padding_side=side)


def check_invariant(rm: BaseRewardModel, reference_model, texts: list[str]) -> float:
    """Embed `texts` alone, in batches of 1/3/16, shuffled, amid other mates; return the
    largest difference from the reference."""
    ids = rm.tokenize(texts)
    ref = [alone(reference_model, row) for row in ids]
    ref_emb = torch.stack([e for e, _ in ref])
    ref_rew = torch.tensor([r for _, r in ref])
    worst = 0.0
    rng = random.Random(0)
    mates = rm.tokenize(sample_texts(24, seed=99))
    for batch_size in (1, 3, 16):
        for trial in range(2):
            order = list(range(len(ids)))
            rng.shuffle(order)
            rows = [ids[i] for i in order]
            if trial:  # other batch-mates, interleaved
                extra = rng.sample(mates, k=rng.randint(1, len(mates)))
                rows = rows + extra
                rng.shuffle(rows)
                where = {id(r): k for k, r in enumerate(rows)}
                picked = [where[id(ids[i])] for i in order]
            else:
                picked = list(range(len(order)))
            emb, rew = rm.embed_token_ids(rows, batch_size=batch_size)
            emb, rew = emb[picked], rew[picked]
            worst = max(
                worst,
                float((emb - ref_emb[order]).abs().max()),
                float((rew - ref_rew[order]).abs().max()),
            )
    return worst


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    cache = {}

    def factory(arch):
        if arch not in cache:
            cache[arch] = make_tiny_rm(tmp_path_factory.mktemp(f"inv-{arch}"), arch, seed=1)
        return cache[arch]

    return factory


CASES = [
    (arch, pad, side)
    for arch in ("llama", "qwen2", "mistral", "gpt_neox", "gpt2")
    for pad in ("own", "eos", "none")
    for side in ("left", "right")
] + [("bert", "own", "right")]


@pytest.mark.parametrize("arch,pad,side", CASES)
def test_tiny_models_are_batch_invariant(tiny, arch, pad, side):
    path = tiny(arch)
    rm = make_rm(path, pad=pad, side=side)
    _, reference = _load(path, pad=pad)  # a second copy: config untouched by ebrm
    assert check_invariant(rm, reference, sample_texts(20, seed=1)) <= TOL


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_left_and_right_padding_agree(tiny, arch):
    texts = sample_texts(12, seed=3)
    left = make_rm(tiny(arch), pad="eos", side="left").embed_texts(texts, batch_size=5)
    right = make_rm(tiny(arch), pad="eos", side="right").embed_texts(texts, batch_size=4)
    for a, b in zip(left, right, strict=True):
        assert float((a - b).abs().max()) <= TOL


@pytest.mark.parametrize("side", ["left", "right"])
def test_a_row_of_pad_ids_is_pooled_as_alone(tiny, side):
    """A row made only of pad ids is pooled at its own first token, not at a pad slot."""
    rm = make_rm(tiny("llama"), pad="eos", side=side)
    _, reference = _load(tiny("llama"), pad="eos")
    eos = rm.pad_token_id
    row, long = [eos, eos], rm.tokenize(sample_texts(1, seed=5))[0] * 3
    emb, rew = rm.embed_token_ids([row, long], batch_size=2)
    ref_emb, ref_rew = alone(reference, row)
    assert float((emb[0] - ref_emb).abs().max()) <= TOL
    assert abs(float(rew[0]) - ref_rew) <= TOL


def test_pad_equal_to_eos_without_own_pad_pools_the_trailing_eos(tiny):
    """A config without a pad id pools a text's last token alone (its trailing [SEP]);
    padding with eos must not make ebrm skip it."""
    rm = make_rm(tiny("qwen2"), pad="none", side="right")
    ids = rm.tokenize(["a text"])[0]
    assert ids[-1] == rm.pad_token_id  # ends with the eos ebrm pads with
    emb, _ = rm.embed_token_ids([ids, ids + ids], batch_size=2)
    _, reference = _load(tiny("qwen2"), pad="none")
    with torch.no_grad():
        last = reference.model(input_ids=torch.tensor([ids])).last_hidden_state[0, -1]
    assert float((emb[0] - last).abs().max()) <= TOL


def test_minilm_is_batch_invariant(tmp_path):
    torch.manual_seed(0)  # the 1-output head (and pooler) are new
    model = AutoModelForSequenceClassification.from_pretrained(minilm_path(), num_labels=1)
    model.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(tmp_path)
    rm = BaseRewardModel.from_pretrained(tmp_path, device="cpu", dtype="float32")
    reference = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert check_invariant(rm, reference, sample_texts(20, seed=2)) <= TOL


@pytest.mark.parametrize("pad", [None, 0])
def test_alone_index_matches_a_loop(pad):
    from ebrm.rm.pooling import alone_index

    gen = torch.Generator().manual_seed(0)
    length = 7
    ids = torch.randint(0, 3, (40, length), generator=gen)
    mask = torch.zeros_like(ids)
    for i in range(len(ids)):
        n = int(torch.randint(1, length + 1, (1,), generator=gen))
        start = 0 if i % 2 else length - n  # right and left padded rows
        mask[i, start : start + n] = 1
    expected = []
    for i in range(len(ids)):
        span = [t for t in range(length) if mask[i, t]]
        keep = [t for t in span if pad is None or int(ids[i, t]) != pad]
        if pad is None:
            expected.append(span[-1])
        else:
            expected.append(keep[-1] if keep else span[0])
    assert alone_index(ids, mask, pad).tolist() == expected
