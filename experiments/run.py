"""Reproduce the headline results: EBRM on MiniLM Bradley-Terry RMs (frozen and fine-tuned).

    python experiments/run.py --data-dir ../shared/data --out runs/experiments [--seeds 0 1 2]
        [--noise 0 0.1 0.25 0.4] [--base all|frozen|finetuned] [--finetune-max-length 128]
        [--quick] [--threads 1]

Per seed: a prompt-grouped HH-RLHF split (train / validation / test = 60 / 15 / 25 %); a
base RM trained on the train split (labels flipped at the given noise rate): a BT head on
frozen MiniLM embeddings, and MiniLM fully fine-tuned as a BT RM (one fine-tuning per seed
and noise rate, on the same flipped labels; the slowest step by far); EBRM variants trained
on the same train split, checkpoints chosen on the clean validation split; everything
evaluated on the HH-RLHF test split and RM-Bench chat and safety-response, base vs refined
from one pass, with paired bootstrap intervals.

Work is done in tiers (cheapest, most important first) and every finished cell is cached in
OUT/cells/, so an interrupted or extended run only does what is missing. After each tier
OUT/results.json and OUT/results.md are rewritten. Progress goes to the log (stdout).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from embeddings import embed_all, load_data, save_encoder  # noqa: E402
from heads import fit_linear_head, fit_reference_head, fit_reference_mlp  # noqa: E402
from report import write_results  # noqa: E402

from ebrm._io import atomic_write_json  # noqa: E402
from ebrm.data import split_pairs  # noqa: E402
from ebrm.energy import TrainConfig, train_energy_head  # noqa: E402
from ebrm.evaluation import (  # noqa: E402
    Reward,
    Units,
    bt_probability,
    evaluate_rewards,
    refine_and_evaluate,
)
from ebrm.features.table import PairFeatures  # noqa: E402
from ebrm.model import EnergyRewardModel  # noqa: E402
from ebrm.rm.label_noise import flip_indices  # noqa: E402

logger = logging.getLogger("experiments")

# variant -> (preset, TrainConfig overrides, [(label, refine method or None, reward kind)])
VARIANTS: dict[str, tuple[str, dict, list[tuple[str, str | None, str]]]] = {
    "default": (
        "small-data",
        {},
        [
            ("default (grid, chosen on val)", None, "refined"),
            ("default: posterior mean", None, "mean"),
            ("default: posterior mode", None, "mode"),
            ("default: conservative mean-1spread", None, "conservative"),
            ("default head + paper refinement", "paper", "refined"),
        ],
    ),
    "paper": (
        "paper",
        {},
        [
            ("paper (paper preset + hybrid-init ascent)", "paper", "refined"),
            ("paper head + grid mean", "mean", "refined"),
        ],
    ),
    "nce+bt": ("small-data", {"objective": "nce+bt"}, [("nce+bt", None, "refined")]),
    "nce+margin": ("small-data", {"objective": "nce+margin"}, [("nce+margin", None, "refined")]),
    "no-filter": (
        "small-data",
        {"filter_conflicts": False},
        [("default, no conflict filter", None, "refined")],
    ),
}
REFERENCES = {
    "reference": "reference: fresh BT head on labels",
    "reference-mlp": "reference: fresh MLP BT head on labels",
}
BASES = ("frozen", "finetuned")


@dataclass
class Cell:
    """One (base, noise, seed) setting: its data splits and base rewards."""

    base: str
    noise: float
    seed: int
    train: PairFeatures  # train pairs with noisy labels
    val: PairFeatures  # the clean validation pairs (checkpoint, method, temperature)
    test: PairFeatures  # compact HH test split
    rmb: PairFeatures  # RM-Bench, 3 pairs per prompt (chosen[i], rejected[i])
    rmb_labels: list[str]
    emb: PairFeatures  # all HH rows with base rewards
    split_idx: dict  # name -> pair indices
    base_info: dict


def make_cell(base, noise, seed, hh_pairs, hh_f, rmb_f, rmb_labels, *, own_head=False) -> Cell:
    """One setting's splits and base rewards.

    own_head=False: the stores hold frozen-encoder embeddings; the base RM's linear BT head
    is fitted here on the (noisy) training labels. True: the stores were extracted with a
    trained base RM (e.g. fine-tuned), whose own rewards are used.
    """
    index = {id(p): i for i, p in enumerate(hh_pairs)}
    train, val, test = split_pairs(
        hh_pairs, test_fraction=0.25, validation_fraction=0.15, seed=seed
    )
    idx = {
        k: torch.tensor([index[id(p)] for p in v])
        for k, v in (("train", train), ("validation", val), ("test", test))
    }
    c, r = hh_f.chosen.clone(), hh_f.rejected.clone()
    # label noise: swap chosen/rejected of round(noise * n) seeded training pairs (the pairs
    # ebrm.rm.train_bt.flip_labels flips); validation and test labels stay clean
    flipped = flip_indices(len(idx["train"]), noise, seed=seed)
    flip = idx["train"][torch.tensor(flipped, dtype=torch.long)]
    c[flip], r[flip] = hh_f.rejected[flip], hh_f.chosen[flip]
    emb = hh_f.embeddings
    if own_head:
        w, rewards, rmb_rewards = None, hh_f.rewards, rmb_f.rewards
    else:
        w = fit_linear_head(emb[c[idx["train"]]], emb[r[idx["train"]]], seed=seed)
        rewards, rmb_rewards = (emb @ w).float(), (rmb_f.embeddings @ w).float()
    clean = PairFeatures(emb, rewards, hh_f.chosen, hh_f.rejected)
    noisy_train = PairFeatures(emb, rewards, c[idx["train"]], r[idx["train"]])
    rmb = PairFeatures(rmb_f.embeddings, rmb_rewards, rmb_f.chosen, rmb_f.rejected)
    return Cell(
        base,
        noise,
        seed,
        noisy_train,
        clean.subset(idx["validation"]),
        clean.subset(idx["test"]).compact(),
        rmb.compact(),
        rmb_labels,
        clean,
        idx,
        {"name_or_path": f"{base} (seed {seed}, noise {noise})", "weights": w},
    )


def train_finetuned(model, hh_pairs, out: Path, *, noise, seed, max_length, quick) -> Path:
    """A fully fine-tuned MiniLM BT RM on this seed's HH train split (`ebrm base-rm train`)."""
    from ebrm.rm.train_bt import REPORT_NAME, BTTrainConfig, train_bradley_terry

    if (out / REPORT_NAME).exists():
        return out
    train, _, _ = split_pairs(hh_pairs, test_fraction=0.25, validation_fraction=0.15, seed=seed)
    config = BTTrainConfig(
        freeze_encoder=False,
        label_noise=noise,
        seed=seed,
        max_length=max_length,
        validation_fraction=0.0,
        device="cpu",
        epochs=0.2 if quick else None,
    )
    logger.info("fine-tuning %s on %d pairs -> %s", model, len(train), out)
    result = train_bradley_terry(model, train, out, config=config, data_spec="hh-rlhf train")
    logger.info(
        "fine-tuned base: train accuracy %.3f in %.0f s", result.train_accuracy, result.seconds
    )
    return out


def test_units(cell: Cell) -> Units:
    return Units.of(cell.test.chosen.numpy(), cell.test.rejected.numpy())


def rmb_units(cell: Cell) -> Units:
    c, r = cell.rmb.chosen.view(-1, 3), cell.rmb.rejected.view(-1, 3)  # (prompts, style)
    return Units.of(c.numpy(), r.numpy(), labels=cell.rmb_labels)


def hh_metrics(m: dict) -> dict:
    """The HH test split's row fields from a pairwise metrics object (with the references'
    comparison when the model stores them: "uncertainty" and raw/scaled "calibration")."""
    d = m["delta"]
    fair = {}
    if "uncertainty" in m:
        u = m["uncertainty"]
        fair = {
            "uncertainty": {k: u[k] for k in ("baseline", "rewards", "metrics", "verdicts")},
            "calibration": m.get("calibration"),
        }
    return {
        **fair,
        "base": m["base"]["accuracy"],
        "refined": m["refined"]["accuracy"],
        "delta": d["accuracy"],
        "ci95": d["ci95"],
        "mcnemar_p": d["mcnemar_p"],
        "ece_base": m["base"].get("ece"),
        "ece_refined": m["refined"].get("ece"),
        "brier_base": m["base"].get("brier"),
        "brier_refined": m["refined"].get("brier"),
        "n": m["n"],
    }


def rmb_metrics(m: dict) -> dict:
    """The RM-Bench row fields (chat, safety) from an rm-bench metrics object."""
    out = {}
    for dom in ("chat", "safety"):
        if dom in m["base"]:
            out[dom] = {
                "base": m["base"][dom]["avg"],
                "refined": m["refined"][dom]["avg"],
                "hard_base": m["base"][dom]["hard"],
                "hard_refined": m["refined"][dom]["hard"],
                "delta": m["delta"][dom]["delta"],
                "ci95": m["delta"][dom]["ci95"],
            }
    return out


def std_shift_rows(model, cell: Cell) -> dict:
    """Does each reward's std rise out of distribution? HH test responses (in distribution)
    vs RM-Bench responses (other prompts and styles), per spread measure."""
    from ebrm.evaluation.uncertainty import std_shift

    hh = model.refine(cell.test.embeddings, cell.test.rewards)
    rmb = model.refine(cell.rmb.embeddings, cell.rmb.rewards)
    measures = {"refined std": "std", "refined spread": "spread"}
    out = {
        name: std_shift(getattr(hh, field), getattr(rmb, field), n_boot=500)
        for name, field in measures.items()
    }
    for ref in ("laplace", "ensemble"):
        key = f"{ref}_std"
        if key in hh.references:
            out[f"{ref} std"] = std_shift(hh.references[key], rmb.references[key], n_boot=500)
    return out


def evaluate_model(model, cell: Cell, evals, n_boot: int) -> list[dict]:
    rows = []
    opts = {"n_boot": n_boot, "make_figures": False}
    for label, method, kind in evals:
        hh = refine_and_evaluate(
            model, "pairwise", test_units(cell), cell.test.embeddings, cell.test.rewards,
            reward=kind, method=method, **opts,
        ).metrics  # fmt: skip
        rmb = refine_and_evaluate(
            model, "rm-bench", rmb_units(cell), cell.rmb.embeddings, cell.rmb.rewards,
            reward=kind, method=method, **opts,
        ).metrics  # fmt: skip
        rows.append(
            {
                "label": label,
                "method": hh["model"]["method"],
                "kind": kind,
                "hh": hh_metrics(hh),
                "rmbench": rmb_metrics(rmb),
            }
        )
    return rows


def reference_row(cell: Cell, variant: str, n_boot: int) -> dict:
    """A fresh BT head (linear or MLP) trained on the same (noisy) training labels as the
    base, chosen on the validation split: what a user could do instead of EBRM."""
    emb = cell.emb.embeddings
    train, val = cell.train, cell.val
    fit = fit_reference_head if variant == "reference" else fit_reference_mlp
    head, info = fit(
        emb[train.chosen],
        emb[train.rejected],
        emb[val.chosen],
        emb[val.rejected],
        seed=cell.seed,
    )

    def score(e: torch.Tensor) -> torch.Tensor:
        if isinstance(head, torch.Tensor):  # the linear head is its weight vector
            return e @ head
        with torch.no_grad():
            return head(e.float()).squeeze(-1)

    def rewards(base: torch.Tensor, ref: torch.Tensor) -> dict[str, Reward]:
        """Base and the reference head as "refined", each with its BT probability."""
        base_np = base.detach().double().numpy()
        ref_np = ref.detach().double().numpy()
        return {
            "base": Reward.of(base_np, lambda a, b: bt_probability(base_np[a], base_np[b])),
            "refined": Reward.of(ref_np, lambda a, b: bt_probability(ref_np[a], ref_np[b])),
        }

    opts = {"n_boot": n_boot, "make_figures": False}
    hh = evaluate_rewards(
        "pairwise", test_units(cell), rewards(cell.test.rewards, score(cell.test.embeddings)),
        **opts,
    ).metrics  # fmt: skip
    rmb = evaluate_rewards(
        "rm-bench", rmb_units(cell), rewards(cell.rmb.rewards, score(cell.rmb.embeddings)),
        **opts,
    ).metrics  # fmt: skip
    return {
        "label": REFERENCES[variant],
        "method": "linear" if variant == "reference" else "mlp",
        "kind": "bt",
        "hh": hh_metrics(hh),
        "rmbench": rmb_metrics(rmb),
        "train": info,
    }


def run_variant(cell: Cell, variant: str, device: str, n_boot: int, quick: bool) -> list[dict]:
    started = time.perf_counter()
    if variant in REFERENCES:
        rows = [reference_row(cell, variant, n_boot)]
    else:
        preset, overrides, evals = VARIANTS[variant]
        extra = {}
        if quick:  # smoke run: short budgets
            extra = {"max_steps": 200, "min_steps": 0} if preset == "small-data" else {}
            extra = extra or {"num_negatives": 32, "joint_widths": (64, 32), "epochs": 1.0}
        config = TrainConfig.preset(
            preset,
            seed=cell.seed,
            device=device,
            **overrides,
            **extra,
        )
        result = train_energy_head(cell.train, config, validation=cell.val, progress=False)
        model = EnergyRewardModel.from_training(
            result, base_rm_info={"name_or_path": cell.base_info["name_or_path"]},
            references=variant == "default",
        )  # fmt: skip
        rows = evaluate_model(model, cell, evals, n_boot)
        if model.references is not None:
            rows[0]["std_shift"] = std_shift_rows(model, cell)
        for row in rows:
            row["train"] = {
                "validation": model.train_info["validation"],
                "filter": result.filter_report.to_dict(),
                "steps": model.train_info.get("steps"),
            }
    for row in rows:
        row.update(
            base=cell.base,
            noise=cell.noise,
            seed=cell.seed,
            variant=variant,
            seconds=round(time.perf_counter() - started, 1),
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("runs/experiments"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.1, 0.25, 0.4])
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument(
        "--finetune-max-length",
        type=int,
        help="tokens per text for the fine-tuned base RM, in its fine-tuning and in the "
        "extraction of its features (default: --max-length); 128 is ~1.5x cheaper on CPU",
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--variants",
        nargs="+",
        choices=[*VARIANTS, *REFERENCES],
        help="run only these variants (e.g. paper in a second process)",
    )
    ap.add_argument(
        "--base",
        choices=["all", *BASES],
        default="all",
        help="frozen-encoder MiniLM BT heads, fully fine-tuned MiniLM BT RMs (one per seed "
        "and noise rate), or both (default)",
    )
    ap.add_argument("--quick", action="store_true", help="few pairs, short training (smoke run)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    out = args.out / ("quick" if args.quick else "")
    hh, items = load_data(args.data_dir, limit=300 if args.quick else None)
    command = " ".join(["python experiments/run.py", *(argv if argv is not None else sys.argv[1:])])
    for kind in BASES if args.base == "all" else [args.base]:
        run_base(kind, hh, items, out, args, noise=args.noise, command=command)
    return 0


def plan(noise: list[float], seeds: list[int], variants: list[str] | None) -> list[list[tuple]]:
    """The (noise, variant, seed) jobs in tiers, cheapest and most important first; only the
    requested noise rates (noise 0 only when asked for) and variants (None: all)."""
    noisy = [n for n in noise if n > 0]
    tiers = [
        [(0.0, "default", s) for s in seeds],
        [(0.0, "paper", seeds[0])],
        [
            (0.0, v, s)
            for v in ("reference", "reference-mlp", "nce+bt", "nce+margin")
            for s in seeds
        ],
        [(n, v, s) for n in noisy for v in ("default", "reference") for s in seeds],
        [(0.0, "paper", s) for s in seeds[1:]] + [(0.0, "no-filter", s) for s in seeds],
        [(n, v, s) for n in noisy for v in ("nce+bt", "nce+margin") for s in seeds],
        [(n, "paper", s) for n in noisy for s in seeds],
    ]
    return [
        [job for job in tier if job[0] in noise and (not variants or job[1] in variants)]
        for tier in tiers
    ]


def run_base(kind: str, hh, items, out: Path, args, *, noise: list[float], command: str) -> None:
    """Every missing cell of one base RM kind, tier by tier (results.md rewritten per tier)."""
    from ebrm.pipeline import default_base_model

    base = f"minilm-{kind}"
    length = args.max_length if kind == "frozen" else args.finetune_max_length or args.max_length
    labels = [item.domain for item in items]
    stores: dict = {}  # (noise, seed) -> (hh features, rm-bench features)

    def features_for(noise: float, seed: int):
        if kind == "frozen":  # one set of embeddings for every seed and noise level
            if not stores:
                enc = save_encoder(
                    default_base_model(), out / "encoders" / base, max_length=args.max_length
                )
                stores[None] = embed_all(
                    enc, out / "features" / base, hh, items, max_length=args.max_length
                )
            return stores[None]
        # the length is in the name: RMs fine-tuned at another length are other models
        name = f"{base}-len{length}-noise{noise:g}-seed{seed}"
        if (noise, seed) not in stores:
            started = time.perf_counter()
            rm_dir = train_finetuned(
                default_base_model(),
                hh,
                out / "encoders" / name,
                noise=noise,
                seed=seed,
                max_length=length,
                quick=args.quick,
            )
            tuned = time.perf_counter()
            stores[(noise, seed)] = embed_all(
                rm_dir, out / "features" / name, hh, items, max_length=length
            )
            logger.info(
                "%s: fine-tuning %.0f s (0 if cached), extraction %.0f s",
                name, tuned - started, time.perf_counter() - tuned,
            )  # fmt: skip
        return stores[(noise, seed)]

    tiers = plan(noise, args.seeds, args.variants)

    def cell_path(noise_rate: float, variant: str, seed: int) -> Path:
        return out / "cells" / f"{base}-noise{noise_rate:g}-seed{seed}-{variant}.json"

    cells: dict = {}
    for tier, jobs in enumerate(tiers, 1):
        ran = False
        for noise_rate, variant, seed in jobs:
            path = cell_path(noise_rate, variant, seed)
            # checked just before running: another process (--variants paper) may have written it
            if path.exists():
                continue
            ran = True
            key = (noise_rate, seed)
            if key not in cells:
                hh_f, rmb_f = features_for(noise_rate, seed)
                cells[key] = make_cell(
                    base, noise_rate, seed, hh, hh_f, rmb_f, labels, own_head=kind != "frozen"
                )
            logger.info("%s tier %d: noise %g seed %d %s", base, tier, noise_rate, seed, variant)
            rows = run_variant(cells[key], variant, args.device, args.n_boot, args.quick)
            for row in rows:  # the base RM's tokens per text, and the command that ran it
                row.update(max_length=length, command=command)
            atomic_write_json(path, rows)
            for row in rows:
                logger.info(
                    "  %-45s HH %.3f -> %.3f (delta %+.3f, CI [%+.3f, %+.3f])",
                    row["label"],
                    row["hh"]["base"],
                    row["hh"]["refined"],
                    row["hh"]["delta"],
                    *row["hh"]["ci95"],
                )
        if ran:
            write_results(out)
            logger.info("%s tier %d done; results in %s", base, tier, out / "results.md")
    write_results(out)  # also when every cell was cached


if __name__ == "__main__":
    sys.exit(main())
