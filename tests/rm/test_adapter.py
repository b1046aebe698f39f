"""BaseRewardModel: the embedding is exactly the score head's input at the pooled token."""

from __future__ import annotations

import logging

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from ebrm.data.types import Conversation
from ebrm.errors import ConfigError, DataFormatError, IncompatibleArtifactError
from ebrm.rm import BaseRewardModel
from tests.rm.conftest import ARCHS, DECODERS

TEXTS = [
    "short one",
    "a considerably longer text that keeps going about reward models and their heads " * 2,
    "x",
    "a medium length response about energy based models",
    "another text, of yet another length, to make batches uneven",
]


def unpadded_forward(rm: BaseRewardModel, text: str):
    """Independent reference: the raw HF model on one unpadded text."""
    ids = torch.tensor([rm.tokenize([text])[0]])
    with torch.no_grad():
        logits = rm.model(input_ids=ids).logits[0, 0]
        base = rm.model.base_model
        if rm.model_type == "bert":
            embedding = base(input_ids=ids).pooler_output[0]
        else:
            embedding = base(input_ids=ids).last_hidden_state[0, -1]
    return embedding, logits


@pytest.mark.parametrize(
    "arch,side", [(a, s) for a in DECODERS for s in ("left", "right")] + [("bert", "right")]
)
def test_embedding_is_head_input_and_batching_is_exact(tiny_rm_factory, arch, side):
    rm = BaseRewardModel.from_pretrained(tiny_rm_factory(arch), device="cpu", padding_side=side)
    emb, rew = rm.embed_texts(TEXTS, batch_size=3)
    assert emb.shape == (len(TEXTS), rm.hidden_size) and emb.dtype == torch.float32
    assert rew.shape == (len(TEXTS),) and rew.dtype == torch.float32
    # head(embedding) is the model's reward
    torch.testing.assert_close(rm.head_reward(emb), rew, atol=1e-5, rtol=0)
    for i, text in enumerate(TEXTS):
        ref_emb, ref_logit = unpadded_forward(rm, text)
        torch.testing.assert_close(emb[i], ref_emb, atol=1e-5, rtol=1e-5)
        assert abs(float(rew[i]) - float(ref_logit)) <= 1e-5
    # batched == one at a time
    single = [rm.embed_texts([t]) for t in TEXTS]
    torch.testing.assert_close(emb, torch.cat([e for e, _ in single]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rew, torch.cat([r for _, r in single]), atol=1e-5, rtol=0)


def test_bert_embedding_is_pooler_output(tiny_rm_factory):
    rm = BaseRewardModel.from_pretrained(tiny_rm_factory("bert"), device="cpu")
    assert rm.head_name == "classifier"
    emb, _ = rm.embed_texts(TEXTS[:2])
    ref, _ = unpadded_forward(rm, TEXTS[0])
    torch.testing.assert_close(emb[0], ref, atol=1e-6, rtol=1e-6)


def test_encoder_refuses_left_padding(tiny_rm_factory):
    with pytest.raises(ConfigError, match="padding_side='left' is not possible"):
        BaseRewardModel.from_pretrained(tiny_rm_factory("bert"), device="cpu", padding_side="left")


def test_encoder_switches_a_left_padding_tokenizer_to_right(tiny_rm_factory):
    path = tiny_rm_factory("bert")
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    model = AutoModelForSequenceClassification.from_pretrained(path)
    rm = BaseRewardModel(model, tokenizer, name_or_path=str(path))
    assert rm.padding_side == "right"


@pytest.mark.parametrize("side", ["left", "right"])
def test_pad_equal_to_eos_pools_the_last_non_eos_token(tiny_rm_factory, side):
    """With pad == eos the model skips a trailing eos; the embedding must follow it."""
    path = tiny_rm_factory("llama")
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.eos_token = tokenizer.sep_token  # every text ends with [SEP]
    tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForSequenceClassification.from_pretrained(path)
    model.config.pad_token_id = tokenizer.eos_token_id
    rm = BaseRewardModel(model, tokenizer, name_or_path=str(path), padding_side=side)
    assert rm.pad_token_id == tokenizer.sep_token_id
    emb, rew = rm.embed_texts(TEXTS, batch_size=4)
    torch.testing.assert_close(rm.head_reward(emb), rew, atol=1e-5, rtol=0)
    for i, text in enumerate(TEXTS):
        ids = torch.tensor([rm.tokenize([text])[0]])
        assert int(ids[0, -1]) == tokenizer.sep_token_id
        with torch.no_grad():
            hidden = model.model(input_ids=ids).last_hidden_state[0]
            logit = model(input_ids=ids).logits[0, 0]
        torch.testing.assert_close(emb[i], hidden[-2], atol=1e-5, rtol=1e-5)  # before [SEP]
        assert abs(float(rew[i]) - float(logit)) <= 1e-5


def test_tokenizer_without_pad_uses_eos(tiny_rm_factory, caplog):
    path = tiny_rm_factory("qwen2")
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.pad_token = None
    tokenizer.eos_token = "[SEP]"
    model = AutoModelForSequenceClassification.from_pretrained(path)
    model.config.pad_token_id = None
    with caplog.at_level(logging.INFO, logger="ebrm.rm.padding"):
        rm = BaseRewardModel(model, tokenizer, name_or_path="tiny-qwen2")
    assert tokenizer.pad_token == "[SEP]"
    assert model.config.pad_token_id == tokenizer.sep_token_id == rm.pad_token_id
    assert "no pad token" in caplog.text
    emb, rew = rm.embed_texts(TEXTS, batch_size=5)
    torch.testing.assert_close(rm.head_reward(emb), rew, atol=1e-5, rtol=0)


def test_wrong_pooling_is_detected(tiny_rm_factory):
    rm = BaseRewardModel.from_pretrained(tiny_rm_factory("llama"), device="cpu")
    rm.pad_token_id = 5  # pad with an id the model does not treat as padding
    with pytest.raises(IncompatibleArtifactError, match="does not reproduce the model's reward"):
        rm.embed_texts(TEXTS, batch_size=5)


def test_more_than_one_label_is_refused(tiny_rm_factory, tmp_path):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_rm_factory("gpt2"))
    config.num_labels = 2
    AutoModelForSequenceClassification.from_config(config).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tiny_rm_factory("gpt2")).save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="num_labels=2"):
        BaseRewardModel.from_pretrained(tmp_path, device="cpu")


def test_missing_model_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="Could not load"):
        BaseRewardModel.from_pretrained(tmp_path / "nope", device="cpu")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"truncation_side": "middle"}, "truncation_side"),
        ({"max_length": 0}, "max_length"),
        ({"dtype": "int8"}, "Unknown dtype"),
    ],
)
def test_bad_options(tiny_rm_factory, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        BaseRewardModel.from_pretrained(tiny_rm_factory("llama"), device="cpu", **kwargs)


def test_truncation_keeps_the_end_by_default(tiny_rm_factory):
    path = tiny_rm_factory("llama")
    text = " ".join(f"word{i}" for i in range(40))
    tokenizer = AutoTokenizer.from_pretrained(path)
    body = tokenizer(text, add_special_tokens=False)["input_ids"]
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    left = BaseRewardModel.from_pretrained(path, device="cpu", max_length=10)
    right = BaseRewardModel.from_pretrained(
        path, device="cpu", max_length=10, truncation_side="right"
    )
    assert left.truncation_side == "left"
    assert left.tokenize([text])[0] == [cls, *body[-8:], sep]
    assert right.tokenize([text])[0] == [cls, *body[:8], sep]


def test_batches_are_length_sorted_and_order_restored(tiny_rm_factory, monkeypatch):
    rm = BaseRewardModel.from_pretrained(tiny_rm_factory("gpt2"), device="cpu")
    seen: list[list[int]] = []
    original = rm._forward_batch

    def spy(rows):
        seen.append([len(r) for r in rows])
        return original(rows)

    monkeypatch.setattr(rm, "_forward_batch", spy)
    emb, rew = rm.embed_texts(TEXTS, batch_size=2)
    flat = [n for batch in seen for n in batch]
    assert flat == sorted(flat, reverse=True)
    lengths = [len(r) for r in rm.tokenize(TEXTS)]
    assert sorted(lengths, reverse=True) == flat
    for i, text in enumerate(TEXTS):  # input order restored
        assert abs(float(rew[i]) - float(unpadded_forward(rm, text)[1])) <= 1e-5


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision(tiny_rm_factory, dtype):
    rm = BaseRewardModel.from_pretrained(tiny_rm_factory("llama"), device="cpu", dtype=dtype)
    assert str(rm.dtype) == f"torch.{dtype}"
    emb, rew = rm.embed_texts(TEXTS, batch_size=2)
    assert emb.dtype == torch.float32 and rew.dtype == torch.float32
    torch.testing.assert_close(rm.head_reward(emb), rew, atol=2e-2, rtol=2e-2)
    full = BaseRewardModel.from_pretrained(tiny_rm_factory("llama"), device="cpu")
    torch.testing.assert_close(rew, full.embed_texts(TEXTS)[1], atol=5e-2, rtol=5e-2)
    assert rm.provenance()["dtype"] == dtype


def test_empty_input_and_empty_text(tiny_rm_factory):
    rm = BaseRewardModel.from_pretrained(tiny_rm_factory("gpt2"), device="cpu")
    emb, rew = rm.embed_texts([])
    assert emb.shape == (0, rm.hidden_size) and rew.shape == (0,)
    # a text that starts with BOS is tokenized without special tokens; whitespace -> none
    rm.tokenizer.bos_token = "[CLS]"
    assert (
        rm.tokenize(["[CLS] hi"])[0]
        == rm.tokenizer("[CLS] hi", add_special_tokens=False)["input_ids"]
    )
    rm.tokenizer.bos_token = " "
    with pytest.raises(DataFormatError, match="Text 1 tokenizes to zero tokens"):
        rm.tokenize(["fine", "  "])


def test_embed_conversations_formats_first(tiny_rm_factory):
    rm = BaseRewardModel.from_pretrained(tiny_rm_factory("qwen2"), device="cpu")
    convs = [Conversation.from_prompt("hi?", "hello!"), Conversation.from_prompt("2+2?", "4")]
    emb, rew = rm.embed_conversations(convs)
    emb2, rew2 = rm.embed_texts([rm.format(c) for c in convs])
    torch.testing.assert_close(emb, emb2)
    torch.testing.assert_close(rew, rew2)
    assert "hello!" in rm.format(convs[0]) and "hi?" in rm.format(convs[0])


def test_weights_hash_and_provenance(tiny_rm_factory, tmp_path):
    from tests.tiny_models import make_tiny_rm

    path = tiny_rm_factory("llama")
    a = BaseRewardModel.from_pretrained(path, device="cpu")
    b = BaseRewardModel.from_pretrained(path, device="cpu", max_length=64)
    other = BaseRewardModel.from_pretrained(
        make_tiny_rm(tmp_path / "seed1", "llama", seed=1), device="cpu"
    )
    assert len(a.weights_hash) == 64
    assert a.weights_hash == b.weights_hash != other.weights_hash
    # not a local directory: hash of the state dict, equally stable
    model = AutoModelForSequenceClassification.from_pretrained(path)
    in_memory = BaseRewardModel(model, a.tokenizer, name_or_path="in-memory")
    again = BaseRewardModel(
        AutoModelForSequenceClassification.from_pretrained(path), a.tokenizer, name_or_path="x"
    )
    assert in_memory.weights_hash == again.weights_hash
    with torch.no_grad():
        model.score.weight.add_(1.0)
    in_memory._weights_hash = None
    assert in_memory.weights_hash != again.weights_hash
    prov = b.provenance()
    assert prov == {
        "name_or_path": str(path.resolve()),
        "revision": None,
        "weights_hash": a.weights_hash,
        "hidden_size": 32,
        "dtype": "float32",
        "max_length": 64,
        "truncation_side": "left",
        "padding_side": "right",  # the tokenizer's own
        "model_type": "llama",
        "engine": "transformers",
    }


def test_all_architectures_find_their_head(tiny_rm_factory):
    names = {
        arch: BaseRewardModel.from_pretrained(tiny_rm_factory(arch), device="cpu").head_name
        for arch in ARCHS
    }
    assert names == {a: ("classifier" if a == "bert" else "score") for a in ARCHS}


def test_chat_template_text_gets_one_bos_also_when_truncated(tiny_rm_factory):
    path = tiny_rm_factory("llama")
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.bos_token = "[CLS]"
    tokenizer.chat_template = (
        "{{ bos_token }}{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} {% endfor %}"
    )
    model = AutoModelForSequenceClassification.from_pretrained(path)
    rm = BaseRewardModel(model, tokenizer, name_or_path=str(path), max_length=8)
    conv = Conversation.from_prompt("one two three four five six", "seven eight nine")
    text = rm.format(conv)
    assert text.startswith("[CLS]<user> one")
    body = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert body[0] == tokenizer.cls_token_id and body.count(tokenizer.cls_token_id) == 1
    assert rm.tokenize([text])[0] == [tokenizer.cls_token_id, *body[-7:]]  # end kept, one BOS
    short = BaseRewardModel(model, tokenizer, name_or_path=str(path), max_length=512)
    assert short.tokenize([text])[0] == body  # no second BOS, no [SEP] appended


def test_head_reward_checks_its_input(tiny_rm_factory):
    rm = BaseRewardModel.from_pretrained(tiny_rm_factory("gpt2"), device="cpu")
    with pytest.raises(ConfigError, match=r"shape \(N, 32\)"):
        rm.head_reward(torch.zeros(3, 7))


def test_max_length_is_capped_at_the_position_limit(tiny_bert_rm_dir):
    from ebrm.rm.adapter import BaseRewardModel

    rm = BaseRewardModel.from_pretrained(str(tiny_bert_rm_dir), device="cpu", max_length=4096)
    limit = rm.model.config.max_position_embeddings
    assert rm.max_length == limit
    long_text = "word " * (3 * limit)  # would overflow the position table without the cap
    emb, reward = rm.embed_texts([long_text, "short"])
    assert emb.shape == (2, rm.hidden_size)
    assert torch.allclose(rm.head_reward(emb), reward, atol=1e-5)
