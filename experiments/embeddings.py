"""Stage 1 of the experiments: embed HH-RLHF and RM-Bench once per base encoder (cached).

A frozen-encoder Bradley-Terry RM is `r = w . e` on a fixed embedding `e` (the vector the
MiniLM sequence-classification head reads). Every frozen-encoder base RM of the experiments
(each seed, each label-noise level) therefore shares one set of embeddings; only its linear
head differs. We extract those embeddings once into ebrm feature stores and fit the heads on
them (`experiments/heads.py`), which is the same computation as `ebrm base-rm train
--freeze-encoder` without re-embedding ~5k texts for every run.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ebrm.data import load_pairs, load_rmbench
from ebrm.data.types import Conversation, PreferencePair, RMBenchItem
from ebrm.features import extract_features, load_features
from ebrm.features.table import PairFeatures

logger = logging.getLogger(__name__)

HH_FILE = "hh-rlhf-harmless/pairs.jsonl.gz"
RMBENCH_FILES = ("rm-bench/chat_filtered.json", "rm-bench/safety-response_filtered.json")


def rmbench_as_pairs(items: list[RMBenchItem]) -> list[PreferencePair]:
    """Three pairs per prompt (chosen[i], rejected[i]) so a store holds all six responses."""
    return [
        PreferencePair(
            chosen=Conversation(item.messages, item.chosen[i]),
            rejected=Conversation(item.messages, item.rejected[i]),
            id=f"{item.id}:{i}",
            subset=item.domain,
        )
        for item in items
        for i in range(3)
    ]


def load_data(data_dir: Path, *, limit: int | None = None):
    """(HH-RLHF pairs, RM-Bench items) from the shared data folder."""
    hh = load_pairs(str(data_dir / HH_FILE), limit=limit)
    items: list[RMBenchItem] = []
    for name in RMBENCH_FILES:
        path = data_dir / name
        if path.exists():
            items += load_rmbench(str(path), limit=None if limit is None else max(limit // 10, 5))
    return hh, items


def save_encoder(model_path: str, out: Path, *, max_length: int, seed: int = 0) -> Path:
    """The MiniLM sequence-classification model whose (frozen) head input we embed."""
    from ebrm.rm.train_bt import BTTrainConfig, load_trainable_rm

    if (out / "config.json").exists():
        return out
    rm = load_trainable_rm(
        model_path,
        BTTrainConfig(freeze_encoder=True, seed=seed, max_length=max_length, device="cpu"),
    )
    out.mkdir(parents=True, exist_ok=True)
    rm.model.save_pretrained(out)
    rm.tokenizer.save_pretrained(out)
    return out


def embed_all(
    rm_dir: Path,
    stores: Path,
    hh: list[PreferencePair],
    items: list[RMBenchItem],
    *,
    max_length: int,
    batch_size: int = 32,
) -> tuple[PairFeatures, PairFeatures]:
    """(HH features, RM-Bench features) from `rm_dir`, extracted once (resumable stores)."""
    from ebrm.rm import BaseRewardModel

    out = []
    rm = None
    for name, pairs in (("hh", hh), ("rmbench", rmbench_as_pairs(items))):
        path = stores / name
        manifest = path / "manifest.json"
        if not (manifest.exists() and '"complete": true' in manifest.read_text()):
            if rm is None:
                rm = BaseRewardModel.from_pretrained(
                    str(rm_dir), device="cpu", max_length=max_length
                )
            logger.info("embedding %d pairs into %s", len(pairs), path)
            extract_features(rm, pairs, path, batch_size=batch_size, progress=True, data_spec=name)
        out.append(load_features(path))
    return out[0], out[1]


def check_order(features: PairFeatures, n_pairs: int) -> None:
    if features.num_pairs != n_pairs:
        raise RuntimeError(f"feature store has {features.num_pairs} pairs, expected {n_pairs}")


if __name__ == "__main__":  # extraction only: python experiments/embeddings.py DATA_DIR OUT
    import sys

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    from ebrm.pipeline import default_base_model

    data_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    hh, items = load_data(data_dir)
    enc = save_encoder(default_base_model(), out / "encoders" / "minilm-frozen", max_length=256)
    embed_all(enc, out / "features" / "minilm-frozen", hh, items, max_length=256)
    print("done")
