"""An unfinished shard's rows survive a crash or an interrupt, and the resumed store equals
an uninterrupted one (fake RM: fast)."""

from __future__ import annotations

import pytest
import torch

from ebrm.errors import Interrupted
from ebrm.features import FeatureStore, extract_features
from ebrm.features.partial import partial_name
from tests.fakes import FakeRM, make_pairs

PAIRS = make_pairs(30, duplicates=False)  # 60 unique texts
# batch_size 1 -> 8 texts per embed call (a chunk); 32-row shards -> 4 chunks per shard
OPTIONS = {"batch_size": 1, "shard_size": 32, "progress": False}


def _texts(rm: FakeRM) -> list[str]:
    return [t for call in rm.calls for t in call]


class InterruptingRM(FakeRM):
    """Raises `Interrupted` (what the CLI's SIGINT/SIGTERM handler raises) on call `at`."""

    def __init__(self, at: int, exc: BaseException) -> None:
        super().__init__()
        self.at, self.exc = at, exc

    def embed_texts(self, texts, **kwargs):
        if len(self.calls) == self.at:
            raise self.exc
        return super().embed_texts(texts, **kwargs)


def _equal(a, b) -> bool:
    return all(
        torch.equal(getattr(a, n), getattr(b, n))
        for n in ("embeddings", "rewards", "chosen", "rejected")
    )


@pytest.mark.parametrize(
    "exc", [Interrupted("sig", signum=15), KeyboardInterrupt()], ids=["SIGTERM", "Ctrl-C"]
)
def test_interrupt_keeps_finished_shards_and_the_unfinished_rows(tmp_path, exc):
    reference = extract_features(FakeRM(), PAIRS, tmp_path / "ref", **OPTIONS).load()
    out = tmp_path / "store"
    # calls 0-3 fill shard 0, calls 4-5 two chunks of shard 1; interrupted on call 6
    first = InterruptingRM(6, exc)
    with pytest.raises(Interrupted) as info:
        extract_features(first, PAIRS, out, **OPTIONS)
    assert str(info.value) == (
        "interrupted: 1 of 2 shards and 16 rows of shard 2 kept; rerun the same command to resume"
    )
    assert info.value.signum == getattr(exc, "signum", 2)
    assert (out / partial_name(1)).is_file()
    assert len(FeatureStore.open(out).manifest["shards"]) == 1

    second = FakeRM()
    store = extract_features(second, PAIRS, out, **OPTIONS)
    done_before = set(_texts(first))
    assert len(done_before) == 48 and not done_before & set(_texts(second))  # nothing redone
    assert _equal(store.load(), reference)
    assert not list(out.glob("partial-*"))


def test_a_rerun_says_what_it_reuses_and_its_bar_counts_only_the_texts_left(
    tmp_path, monkeypatch, caplog
):
    """Issue 25 item 2: one line before the bar, and a bar of the texts still to embed."""
    import logging

    import ebrm.features.extract as extract_module

    out = tmp_path / "store"
    with pytest.raises(Interrupted):  # shard 0 (32 rows) done, 2 chunks (16) of shard 1 saved
        extract_features(InterruptingRM(6, KeyboardInterrupt()), PAIRS, out, **OPTIONS)
    totals = []
    real_tqdm = extract_module.tqdm

    def recording(*args, **kwargs):
        totals.append(kwargs["total"])
        return real_tqdm(*args, **kwargs)

    monkeypatch.setattr(extract_module, "tqdm", recording)
    with caplog.at_level(logging.INFO, logger="ebrm.features.extract"):
        extract_features(FakeRM(), PAIRS, out, **OPTIONS)
    left = 60 - 32 - 16  # 60 unique texts, minus shard 0, minus the 16 saved rows
    assert f"resuming {out}: 1 of 2 shards and 16 rows kept, {left} texts left" in caplog.messages
    assert totals == [left]


def test_a_rerun_of_a_finished_extraction_says_so_and_shows_no_empty_bar(
    tmp_path, monkeypatch, caplog
):
    """Rerunning a finished `ebrm extract` once said "resuming OUT: 2 of 2 shards kept, 0
    texts left" above two empty bars; it says the store is complete and embeds nothing."""
    import logging

    import ebrm.features.extract as extract_module

    out = tmp_path / "store"
    reference = extract_features(FakeRM(), PAIRS, out, **OPTIONS).load()
    shards = -(-60 // OPTIONS["shard_size"])  # 60 unique texts
    enabled = []
    real_tqdm = extract_module.tqdm

    def recording(*args, **kwargs):
        enabled.append(not kwargs["disable"])
        return real_tqdm(*args, **kwargs)

    monkeypatch.setattr(extract_module, "tqdm", recording)
    again = FakeRM()
    with caplog.at_level(logging.INFO, logger="ebrm.features.extract"):
        store = extract_features(again, PAIRS, out, **{**OPTIONS, "progress": True})
    assert f"{out} is already complete ({shards} shards): nothing to embed" in caplog.messages
    assert not [m for m in caplog.messages if "resuming" in m]
    assert enabled == [False] and not _texts(again)
    assert _equal(store.load(), reference)


def test_one_shard_interrupted_names_it_and_never_says_the_next(tmp_path):
    with pytest.raises(Interrupted) as info:  # 60 texts in one shard, interrupted on call 3
        extract_features(
            InterruptingRM(3, KeyboardInterrupt()), PAIRS, tmp_path / "s",
            **{**OPTIONS, "shard_size": 64},
        )  # fmt: skip
    assert str(info.value) == (
        "interrupted: 0 of 1 shard and 24 rows of shard 1 kept; rerun the same command to resume"
    )


def test_a_fresh_extraction_says_nothing_about_resuming(tmp_path, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="ebrm.features.extract"):
        extract_features(FakeRM(), PAIRS, tmp_path / "s", **OPTIONS)
    assert not [m for m in caplog.messages if "resuming" in m]


def test_a_crash_loses_only_what_came_after_the_last_timed_checkpoint(tmp_path):
    reference = extract_features(FakeRM(), PAIRS, tmp_path / "ref", **OPTIONS).load()
    out = tmp_path / "store"
    crashed = FakeRM(fail_after=7)  # a hard crash, no chance to save: only timed saves count
    with pytest.raises(RuntimeError, match="simulated crash"):
        extract_features(crashed, PAIRS, out, checkpoint_seconds=0.0, **OPTIONS)
    resumed = FakeRM()
    store = extract_features(resumed, PAIRS, out, **OPTIONS)
    # 7 chunks were embedded; with a save after every chunk none of them is redone
    assert not set(_texts(crashed)) & set(_texts(resumed))
    assert _equal(store.load(), reference)


def test_without_timed_checkpoints_a_crash_redoes_the_unfinished_shard(tmp_path):
    out = tmp_path / "store"
    crashed = FakeRM(fail_after=7)
    with pytest.raises(RuntimeError):
        extract_features(crashed, PAIRS, out, checkpoint_seconds=None, **OPTIONS)
    resumed = FakeRM()
    extract_features(resumed, PAIRS, out, **OPTIONS)
    assert len(set(_texts(crashed)) & set(_texts(resumed))) == 3 * 8  # shard 1's 3 chunks


def test_a_partial_from_other_settings_is_discarded(tmp_path):
    out = tmp_path / "store"
    with pytest.raises(Interrupted):
        extract_features(InterruptingRM(6, KeyboardInterrupt()), PAIRS, out, **OPTIONS)
    # another batch size makes other chunks: the saved rows are not reused (but kept shards are)
    resumed = FakeRM()
    extract_features(resumed, PAIRS, out, **{**OPTIONS, "batch_size": 2})
    assert sum(len(c) for c in resumed.calls) == 60 - 32
    assert not list(out.glob("partial-*"))
