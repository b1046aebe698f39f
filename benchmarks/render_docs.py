"""Render measured results into the docs: each `<!-- BENCH:name:BEGIN -->` ... END block of a page
is replaced by a table made from `benchmarks/results/<name>.json`.

    python benchmarks/render_docs.py record energy-cpu-time -- \\
        python benchmarks/bench_energy.py --json --cpu-time --threads 1
    python benchmarks/render_docs.py render            # rewrite the blocks of docs/*.md
    python benchmarks/render_docs.py render --check    # exit 1 if a page differs (CI, tests)

`record` runs a benchmark that prints one JSON object as its last line, samples the load
average while it runs, reads the machine (CPU model, cores, GPU) and writes the result file;
`render` only reads result files, so a page can be re-rendered without re-running anything
(and a hand edit inside a block is undone, which `tests/test_docs_render.py` checks). Result
files transcribed from an older printout say so in their "source" field.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs"
BLOCK = re.compile(
    r"(<!-- BENCH:(?P<name>[\w.-]+):BEGIN -->\n)(?P<body>.*?)(<!-- BENCH:(?P=name):END -->)", re.S
)


# --- the machine ------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """CPU model, logical cores, GPU (None without one) and the OS, read from this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        names = [n.strip() for n in out.stdout.splitlines() if n.strip()]
        gpu = ", ".join(names) or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu, "os": platform.platform(terse=True)}


class LoadSampler:
    """The 1-minute load average every `every` seconds while a command runs (a thread)."""

    def __init__(self, every: float = 5.0) -> None:
        self.every, self.samples = every, [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict[str, float]:
        s = self.samples
        return {"min": round(min(s), 2), "mean": round(sum(s) / len(s), 2), "max": round(max(s), 2)}


def record(
    name: str,
    command: list[str],
    *,
    page: str,
    kind: str,
    conditions: str,
    result_file: Path | None = None,
) -> Path:
    """Run `command`, keep the JSON object it prints last (or writes to `result_file`), and
    write results/<name>.json. A "python" word of `command` runs this interpreter."""
    started = dt.datetime.now(dt.timezone.utc)
    run = [sys.executable if word == "python" else word for word in command]
    with LoadSampler() as load:
        proc = subprocess.run(run, capture_output=True, text=True, check=False, cwd=ROOT)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"{' '.join(command)} exited with {proc.returncode}")
    if result_file is not None:
        result = json.loads(Path(result_file).read_text())
    else:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    seconds = (dt.datetime.now(dt.timezone.utc) - started).total_seconds()
    entry = {
        "name": name,
        "page": page,
        "kind": kind,
        "command": " ".join(command),
        "date": started.date().isoformat(),
        "seconds": round(seconds, 1),
        "machine": machine(),
        "load_average": load.summary(),
        "conditions": conditions,
        "source": "measured by benchmarks/render_docs.py record",
        "result": result,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(entry, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


# --- tables -----------------------------------------------------------------------------------


def _table(columns: list[str], rows: list[list[Any]], align: list[str] | None = None) -> list[str]:
    align = align or ["l"] * len(columns)
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    out = ["| " + " | ".join(columns) + " |", "| " + " | ".join(marks[a] for a in align) + " |"]
    return out + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def _generic(result: dict) -> list[str]:
    return _table(result["columns"], result["rows"], result.get("align"))


def _energy(r: dict) -> list[str]:
    """bench_energy.py --json: seconds per case and the speed-ups the page discusses."""
    unit = "CPU s" if r.get("clock") == "process_time" else "wall s"
    pub, n = r["refine_paper_published_s"], r["shapes"]["responses"]
    rows = [
        ["NCE+ training step, naive concat-MLP", f"{r['train_step_naive_s']:.2f}", ""],
        ["NCE+ training step, ebrm", f"{r['train_step_s']:.2f}",
         f"{r['train_step_naive_s'] / r['train_step_s']:.1f}x"],
        [f"refine {n:,} responses, the paper's loop as its code runs it", f"{pub:.2f}", ""],
        [f"refine {n:,}, `paper` mode (T = 50, batched, factorised)", f"{r['refine_paper_s']:.2f}",
         f"{pub / r['refine_paper_s']:.1f}x vs the published loop"],
        [f"refine {n:,}, `grid` mode, coarse to fine, fp32", f"{r['refine_grid_s']:.2f}",
         f"{pub / r['refine_grid_s']:.1f}x vs the published loop; "
         f"{r['refine_paper_s'] / r['refine_grid_s']:.2f}x our `paper` mode"],
        [f"refine {n:,}, `grid` mode, bf16", f"{r['refine_grid_bf16_s']:.2f}",
         f"{pub / r['refine_grid_bf16_s']:.1f}x vs the published loop"],
    ]  # fmt: skip
    s = r["shapes"]
    threads = f"{r['threads']} thread" + ("s" if r["threads"] != 1 else "")
    lines = _table(["what", f"{unit} ({threads})", "speed-up"], rows, ["l", "r", "l"])
    lines += [
        "",
        f"Shapes: embedding {s['dim']}, batch {s['batch']}, M = {s['negatives']} negatives, "
        f"widths {s['widths']}; losses agree to {r['loss_rel_diff']:.1e} relative; peak RSS "
        f"{r['peak_rss_mb']:,.0f} MB.",
    ]
    return lines


def _reliability(result: dict) -> list[str]:
    """tests/reliability/_report.py's counts: {target: {"tried": n, outcome: count, ...}}."""
    rows = []
    for target, outcomes in sorted(result.items()):
        detail = ", ".join(f"{k}: {v}" for k, v in outcomes.items() if k != "tried")
        rows.append([target, f"{outcomes['tried']:,}", detail])
    return _table(["target", "cases tried", "outcomes"], rows, ["l", "r", "l"])


FORMATS: dict[str, Callable[[dict], list[str]]] = {
    "table": _generic,
    "bench_energy": _energy,
    "reliability": _reliability,
}


def _provenance(entry: dict) -> list[str]:
    m = entry["machine"]
    hardware = f"{m['cpu']}, {m['cores']} logical cores, " + (
        f"GPU {m['gpu']}" if m.get("gpu") else "no GPU"
    )
    load = entry.get("load_average")
    if isinstance(load, dict):
        load = f"{load['min']}-{load['max']} (mean {load['mean']})"
    when = entry["date"] + (f", {entry['seconds']:.0f} s" if entry.get("seconds") else "")
    parts = [
        f"`{entry['command']}`",
        when,
        hardware,
        f"load average during the run: {load or 'not recorded'} (*{entry['conditions']}*)",
    ]
    if not entry["source"].startswith("measured by"):
        parts.append(entry["source"])
    return ["Measured with " + "; ".join(parts) + "."]


def render_block(entry: dict) -> str:
    """The markdown inside one block: what was run, where, how loaded, then the table."""
    source = f"benchmarks/results/{entry['name']}.json"
    lines = [f"<!-- rendered by benchmarks/render_docs.py from {source}; edit that file -->", ""]
    lines += _provenance(entry) + [""] + FORMATS[entry["kind"]](entry["result"])
    if entry.get("note"):
        lines += ["", entry["note"]]
    return "\n".join(lines) + "\n"


def load_results(folder: Path = RESULTS) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def render_page(text: str, results: dict[str, dict]) -> str:
    """`text` with every BENCH block's body replaced (unknown names are an error)."""

    def sub(m: re.Match) -> str:
        name = m.group("name")
        if name not in results:
            raise SystemExit(f"block {name!r}: no benchmarks/results/{name}.json")
        return m.group(1) + render_block(results[name]) + m.group(4)

    return BLOCK.sub(sub, text)


def render(check: bool = False, docs: Path = DOCS, folder: Path = RESULTS) -> list[Path]:
    """Rewrite (or with `check`, compare) every page of `docs` holding a BENCH block."""
    results, stale = load_results(folder), []
    for page in sorted(docs.glob("*.md")):
        text = page.read_text()
        if not BLOCK.search(text):
            continue
        new = render_page(text, results)
        if new != text:
            stale.append(page)
            if not check:
                tmp = page.with_suffix(".md.tmp")
                tmp.write_text(new)
                os.replace(tmp, page)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    rec = sub.add_parser("record", help="run a benchmark and keep its JSON result")
    rec.add_argument("name")
    rec.add_argument("--page", default="docs/performance.md")
    rec.add_argument("--result-file", type=Path, help="read the result from this JSON file")
    rec.add_argument("--kind", default="bench_energy", choices=sorted(FORMATS))
    rec.add_argument("--conditions", default="shared", choices=["quiet", "shared"],
                     help="quiet: nothing else ran; shared: other jobs on the machine")  # fmt: skip
    ren = sub.add_parser("render", help="rewrite the BENCH blocks of docs/*.md")
    ren.add_argument("--check", action="store_true", help="exit 1 if a page is stale")
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    args, command = parser.parse_args(argv[:cut]), argv[cut + 1 :]
    if args.what == "record":
        if not command:
            parser.error("record: give the command after --")
        print(
            record(
                args.name,
                command,
                page=args.page,
                kind=args.kind,
                conditions=args.conditions,
                result_file=args.result_file,
            )  # fmt: skip
        )
        return 0
    stale = render(check=args.check)
    for page in stale:
        print(f"{'stale' if args.check else 'rendered'}: {page.relative_to(ROOT)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
