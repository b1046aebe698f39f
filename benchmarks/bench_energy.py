"""Benchmark of the energy head: one NCE+ training step and refinement of 1,024 responses.

    python benchmarks/bench_energy.py            # reference shapes, a table with ratios
    python benchmarks/bench_energy.py --json     # one JSON object
    python benchmarks/bench_energy.py --quick    # small shapes, seconds
    python benchmarks/bench_energy.py --tiny     # tiny shapes: checks that it runs
    python benchmarks/bench_energy.py --device cuda   # on a GPU (timings synchronised)
    python benchmarks/bench_energy.py --cpu-time --threads 1   # CPU seconds, shared machines

Training step (forward + backward + AdamW step, dropout on) at the reference shapes
(embedding 4096, batch 256 records, M = 768 negatives, joint widths 1024/512):

* naive: the plain concat-MLP, f = MLP([e; h(y)]) on every (record, candidate) row;
* ours: `ebrm.energy.NCEPlus` as the trainer runs it (first layer factorised, W_e e once
  per record; joint MLP as one fused autograd node, `ebrm.energy.fused`).

Both are fed the same weights and the same candidates; their NCE+ losses (dropout off)
must agree to 1e-4 relative, else the script fails. Refinement: paper mode (T = 50
gradient-ascent steps, hybrid init) vs grid mode (the shared-grid posterior), both from
`ebrm.refine`. Times are the best of `--repeats` runs; the machine may be shared, so
compare ratios from one run rather than absolute seconds across runs.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import torch
from torch import nn

from ebrm.energy.config import EnergyHeadConfig
from ebrm.energy.head import EnergyHead
from ebrm.energy.losses import nce_plus_loss
from ebrm.energy.noise import sample_candidates
from ebrm.energy.objectives import NCEPlus, PairBatch
from ebrm.refine import RefineConfig, grid_posterior, paper_refine

REFERENCE = dict(dim=4096, batch=256, negatives=768, widths=(1024, 512), responses=1024)
QUICK = dict(dim=1024, batch=32, negatives=128, widths=(256, 128), responses=256)
TINY = dict(dim=64, batch=8, negatives=16, widths=(32, 16), responses=32)  # smoke runs


class NaiveHead(nn.Module):
    """The unfactorised head: one Linear on concat[e, h(y)] for every candidate."""

    def __init__(self, head: EnergyHead) -> None:
        super().__init__()
        self.reward_branch = head.reward_branch
        self.first = nn.Linear(
            head.config.embedding_dim + head.config.reward_widths[-1], head.config.joint_widths[0]
        )
        with torch.no_grad():
            self.first.weight.copy_(
                torch.cat([head.joint_in_embedding.weight, head.joint_in_reward.weight], dim=1)
            )
            self.first.bias.copy_(head.joint_in_reward.bias)
        self.rest = head.joint_rest

    def forward(self, emb: torch.Tensor, cands: torch.Tensor) -> torch.Tensor:
        b, k = cands.shape
        h = self.reward_branch(cands.unsqueeze(-1))  # (B, K, R)
        x = torch.cat([emb.unsqueeze(1).expand(b, k, emb.shape[1]), h], dim=-1)  # (B, K, D+R)
        return self.rest(self.first(x)).squeeze(-1)  # (B, K)


def _sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()  # kernels run asynchronously: time their completion


CLOCK = time.perf_counter  # --cpu-time: time.process_time (steadier on a shared machine)


def _best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        _sync()
        start = CLOCK()
        fn()
        _sync()
        best = min(best, CLOCK() - start)
    return best


def bench(shapes: dict, *, repeats: int, skip_naive: bool, device: str = "cpu") -> dict:
    torch.manual_seed(0)
    dim, batch, m = shapes["dim"], shapes["batch"], shapes["negatives"]
    head = EnergyHead(EnergyHeadConfig(embedding_dim=dim, joint_widths=shapes["widths"]))
    naive = NaiveHead(head)
    head.to(device), naive.to(device)
    gen = torch.Generator().manual_seed(0)  # draws on the CPU: the same inputs on any device
    emb = torch.randn(batch, dim, generator=gen).to(device)
    y = 4 * torch.randn(batch, generator=gen).to(device)
    objective = NCEPlus(noise_std=3.5, positive_noise_ratio=0.1, num_negatives=m, reg_weight=0.05)
    pairs = PairBatch(
        emb[: batch // 2],
        emb[batch // 2 :],
        y[: batch // 2],
        y[batch // 2 :],
        torch.ones(batch // 2, dtype=torch.bool),
    )

    def naive_loss() -> torch.Tensor:
        records, targets = objective.records(pairs)
        cands, log_q = sample_candidates(
            targets,
            noise_std=3.5,
            positive_noise_ratio=0.1,
            num_negatives=m,
            generator=torch.Generator().manual_seed(1),
        )
        return nce_plus_loss(naive(records, cands), log_q, reg_weight=0.05)

    def our_loss() -> torch.Tensor:
        return objective(head, pairs, generator=torch.Generator().manual_seed(1)).loss

    head.eval(), naive.eval()
    with torch.no_grad():
        ours_eval = float(our_loss())
        naive_eval = float(naive_loss()) if not skip_naive else ours_eval
    rel = abs(ours_eval - naive_eval) / max(abs(naive_eval), 1e-12)
    if rel > 1e-4:
        raise SystemExit(f"losses differ: naive {naive_eval} vs ours {ours_eval} (rel {rel:.2e})")
    head.train(), naive.train()

    def step(module: nn.Module, loss_fn) -> None:
        opt = optimizers[id(module)]
        loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    optimizers = {id(m_): torch.optim.AdamW(m_.parameters(), lr=1e-4) for m_ in (head, naive)}
    step(head, our_loss)  # warm-up (allocator, AdamW state)
    train_s = _best_time(lambda: step(head, our_loss), repeats)
    naive_s = float("nan") if skip_naive else _best_time(lambda: step(naive, naive_loss), 1)

    head.eval()
    n = shapes["responses"]
    emb_r = torch.randn(n, dim, generator=gen).to(device)
    init = 4 * torch.randn(n, generator=gen)
    config = RefineConfig()
    grid = config.grid()
    paper_s = _best_time(
        lambda: paper_refine(
            head, emb_r, init, steps=50, generator=torch.Generator().manual_seed(0)
        ),
        1,
    )
    published_s = _best_time(lambda: _published_paper_loop(naive, emb_r, init), 1)
    grid_s = _best_time(lambda: grid_posterior(head, emb_r, grid=grid), repeats)
    grid_bf16_s = _best_time(
        lambda: grid_posterior(head, emb_r, grid=grid, compute_dtype="bfloat16"), repeats
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
    return {
        "train_step_naive_s": naive_s,
        "train_step_s": train_s,
        "refine_paper_s": paper_s,
        "refine_grid_s": grid_s,
        "refine_paper_published_s": published_s,
        "refine_grid_bf16_s": grid_bf16_s,
        "peak_rss_mb": round(peak, 1),
        "peak_gpu_mb": None if gpu_peak is None else round(gpu_peak, 1),
        "device": device,
        "loss_rel_diff": rel,
        "shapes": {k: list(v) if isinstance(v, tuple) else v for k, v in shapes.items()},
        "threads": torch.get_num_threads(),
        "grid_size": config.grid_size,
    }


def _published_paper_loop(
    concat_mlp: nn.Module, embeddings: torch.Tensor, init: torch.Tensor
) -> torch.Tensor:
    """Paper-mode search as the research code runs it: the whole concat MLP with autograd
    at every step (no factorisation), hybrid init, T=50, lam0 0.5, eta 0.2."""
    generator = torch.Generator().manual_seed(0)
    inside = (init >= -2) & (init <= 2)
    y = torch.where(inside, init, torch.rand(init.shape, generator=generator) * 8 - 4)
    y = y.to(embeddings.device)
    lam = torch.full_like(y, 0.5)

    def score_and_grad(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            v = v.detach().requires_grad_(True)
            f = concat_mlp(embeddings, v.unsqueeze(1))[:, 0]
            (grad,) = torch.autograd.grad(f.sum(), v)
        return f.detach(), grad

    for _ in range(50):
        active = lam >= 1e-6
        if not active.any():
            break
        f, grad = score_and_grad(y)
        proposal = y + lam * grad
        f_new, _ = score_and_grad(proposal)
        accept = (f_new > f) & active
        y = torch.where(accept, proposal, y)
        lam = torch.where(active & ~accept, lam * 0.2, lam)
    return y


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="small shapes (seconds)")
    parser.add_argument("--tiny", action="store_true", help="tiny shapes (a smoke run)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs (best is kept)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--skip-naive", action="store_true", help="do not run the naive step")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default cpu)")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time with the process's CPU time instead of wall time (CPU only: robust to "
        "other processes on a shared machine; counts every thread, so use --threads 1)",
    )
    args = parser.parse_args(argv)
    global CLOCK
    if args.cpu_time:
        CLOCK = time.process_time
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        torch.empty(0, device=args.device)
    except (RuntimeError, AssertionError) as err:
        raise SystemExit(f"--device {args.device} is not usable here: {err}") from None
    result = bench(
        TINY if args.tiny else QUICK if args.quick else REFERENCE,
        repeats=args.repeats,
        skip_naive=args.skip_naive,
        device=args.device,
    )
    result["clock"] = "process_time" if args.cpu_time else "wall"
    if args.json:
        print(json.dumps(result, sort_keys=True))
        return 0
    s = result["shapes"]
    print(
        f"energy head: D={s['dim']} batch={s['batch']} M={s['negatives']} widths={s['widths']} "
        f"device={result['device']} threads={result['threads']} "
        f"(loss rel diff {result['loss_rel_diff']:.1e})"
    )
    rows = [
        ("NCE+ train step, naive concat", result["train_step_naive_s"], None),
        (
            "NCE+ train step, ebrm",
            result["train_step_s"],
            result["train_step_naive_s"] / result["train_step_s"],
        ),
        (
            f"refine {s['responses']}, paper loop as published",
            result["refine_paper_published_s"],
            None,
        ),
        (
            f"refine {s['responses']}, paper mode T=50 (ebrm)",
            result["refine_paper_s"],
            result["refine_paper_published_s"] / result["refine_paper_s"],
        ),
        (
            f"refine {s['responses']}, grid G={result['grid_size']} fp32",
            result["refine_grid_s"],
            result["refine_paper_published_s"] / result["refine_grid_s"],
        ),
        (
            f"refine {s['responses']}, grid G={result['grid_size']} bf16",
            result["refine_grid_bf16_s"],
            result["refine_paper_published_s"] / result["refine_grid_bf16_s"],
        ),
    ]
    print(f"{'what':<40} {'seconds':>9} {'speed-up':>9}  (refine speed-ups vs published loop)")
    for name, secs, ratio in rows:
        print(f"{name:<40} {secs:>9.3f} {'' if ratio is None else f'{ratio:.1f}x':>9}")
    ratio = result["refine_paper_s"] / result["refine_grid_s"]
    print(f"grid fp32 vs paper mode (ebrm): {ratio:.2f}x (issue 4's target: >= 10x)")
    print(f"peak RSS {result['peak_rss_mb']:.0f} MB", end="")
    print("" if result["peak_gpu_mb"] is None else f", peak GPU {result['peak_gpu_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
