"""Reference fitting (Laplace + bootstrap ensemble) at scale: the chunked fit against the
previous whole-matrix one (`ebrm.references._reference_impl`), timed in the same run.

    python benchmarks/bench_references.py [--pairs 16384 65536] [--dim 1024] [--json]

Synthetic fp32 embeddings (2 rows per pair, 10% of the pairs for validation, labels from a
random linear BT head). Each fit runs in its own spawned process: time, and peak RSS above
the process's RSS once the data is built. The old fit is stopped after --old-timeout
seconds (then its time is reported as a lower bound).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time


def _data(pairs: int, dim: int, seed: int = 0):
    import torch

    gen = torch.Generator().manual_seed(seed)
    emb = torch.randn(2 * pairs, dim, generator=gen)
    true_w = torch.randn(dim, generator=gen) * (3.0 / dim**0.5)
    a, b = torch.arange(0, 2 * pairs, 2), torch.arange(1, 2 * pairs, 2)
    first = torch.rand(pairs, generator=gen) < torch.sigmoid((emb[a] - emb[b]) @ true_w)
    chosen, rejected = torch.where(first, a, b), torch.where(first, b, a)
    n_train = pairs - pairs // 10
    return emb, chosen, rejected, n_train


def _worker(which: str, pairs: int, dim: int, queue) -> None:
    emb, chosen, rejected, nt = _data(pairs, dim)
    before = _reset_peak()
    start = time.perf_counter()
    if which == "new":
        from ebrm.references._pairs import PairRows
        from ebrm.references.fit import fit_pair_references

        train = PairRows(emb, emb, chosen[:nt], rejected[:nt])
        val = PairRows(emb, emb, chosen[nt:], rejected[nt:])
        refs = fit_pair_references(train, val)
        out = {n: refs.report[n]["prior_precision"] for n in ("laplace", "ensemble")}
    else:
        from ebrm.references import _reference_impl as old

        # what fit_pair_references did: gather every pair, float64 copies
        tc, tr = emb[chosen[:nt]].double(), emb[rejected[:nt]].double()
        vc, vr = emb[chosen[nt:]].double(), emb[rejected[nt:]].double()
        _, lap = old.fit_laplace(tc, tr, vc, vr)
        _, ens = old.fit_ensemble(tc, tr, vc, vr)
        out = {"laplace": lap["prior_precision"], "ensemble": ens["prior_precision"]}
    seconds = time.perf_counter() - start
    queue.put({"seconds": seconds, "peak_extra_mb": (_peak_kb() - before) / 1024, **out})


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))


def _reset_peak() -> int:
    """Reset the peak RSS to the current RSS (Linux), so building the data does not count;
    returns the current RSS in kB."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _status_kb("VmRSS:")
    except OSError:  # not Linux: the high-water mark so far
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak_kb() -> int:
    try:
        return _status_kb("VmHWM:")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run(which: str, pairs: int, dim: int, timeout: float | None) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(which, pairs, dim, queue))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.terminate()
        proc.join()
        return {"seconds": None, "timed_out_after": timeout}
    return queue.get()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, nargs="+", default=[16384, 65536])
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--old-timeout", type=float, default=900.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = []
    for pairs in args.pairs:
        new = run("new", pairs, args.dim, None)
        old = run("old", pairs, args.dim, args.old_timeout)
        if old["seconds"] is not None:
            ratio = old["seconds"] / new["seconds"]
        else:
            ratio = f">= {old['timed_out_after'] / new['seconds']:.1f}"
        rows.append({"pairs": pairs, "dim": args.dim, "new": new, "old": old, "speedup": ratio})
    result = {"benchmark": "references", "rows": rows}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{'pairs':>7} {'dim':>5} {'new s':>8} {'old s':>8} {'speed-up':>9} "
              f"{'new MB':>7} {'old MB':>7}")  # fmt: skip
        for r in rows:
            old_s, ratio = r["old"]["seconds"], r["speedup"]
            old_text = (
                f">{r['old'].get('timed_out_after', 0):.0f}" if old_s is None else f"{old_s:.1f}"
            )
            ratio_text = ratio if isinstance(ratio, str) else f"{ratio:.1f}x"
            old_mb = r["old"].get("peak_extra_mb", float("nan"))
            print(
                f"{r['pairs']:>7} {r['dim']:>5} {r['new']['seconds']:>8.1f} {old_text:>8} "
                f"{ratio_text:>9} {r['new']['peak_extra_mb']:>7.0f} {old_mb:>7.0f}"
            )
    return result


if __name__ == "__main__":
    main()
