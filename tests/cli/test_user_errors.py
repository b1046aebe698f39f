"""Every command, every user mistake: exit 2, one line naming the user's flag and path,
no traceback, nothing on disk changed, and no model loaded (the command runs in a fresh
interpreter and must not even have imported torch when it stops).

The time from start to the error is printed for each case (`pytest -s` or `-rP` shows it):
logged, not asserted."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = """
import json, sys, time
started = time.perf_counter()
from ebrm.cli import main
code = main(sys.argv[2:])
sys.stdout.flush(); sys.stderr.flush()
with open(sys.argv[1], "w") as f:
    json.dump({"code": code, "torch": "torch" in sys.modules,
               "seconds": time.perf_counter() - started}, f)
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_rm_dir):
    """One of each thing a user can point a flag at."""
    from tests.fakes import FakeRM, make_pairs
    from tests.integrations.tiny_ebrm import make_tiny_ebrm

    from ebrm.features.extract import extract_features

    root = tmp_path_factory.mktemp("user-errors")
    make_tiny_ebrm(root / "model", tiny_rm_dir)
    extract_features(
        FakeRM(dim=8), make_pairs(12, duplicates=False), root / "store", progress=False
    )
    # stores that claim the model's own base RM but other extraction settings
    recorded = json.loads((root / "model" / "config.json").read_text())["base_rm"]
    for name, key, value in (
        ("store-ml", "max_length", 64),
        ("store-ts", "truncation_side", "right"),
    ):
        shutil.copytree(root / "store", root / name)
        manifest = json.loads((root / name / "manifest.json").read_text())
        manifest.update({"base_rm": {**recorded, key: value}, key: value})
        (root / name / "manifest.json").write_text(json.dumps(manifest))
    row = {"prompt": "Hi?", "chosen": "Hello there.", "rejected": "No."}
    (root / "pairs.jsonl").write_text("".join(json.dumps(row) + "\n" for _ in range(8)))
    (root / "cands.jsonl").write_text(json.dumps({"prompt": "Hi", "candidates": ["a", "b"]}))
    (root / "afile").write_text("not a directory\n")
    (root / "scores.jsonl").write_text('{"kept": true}\n')
    (root / "emptydir").mkdir()
    (root / "notes").mkdir()
    (root / "notes" / "todo.txt").write_text("mine\n")
    (root / "report").mkdir()
    (root / "report" / "metrics.json").write_text("{}\n")
    # what `ebrm base-rm train` leaves: an HF model with its report beside it
    shutil.copytree(tiny_rm_dir, root / "baserm")
    (root / "baserm" / "ebrm_base_rm.json").write_text("{}\n")
    return {"root": root, "rm": tiny_rm_dir}


def _busy_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


# (case id, argv with {placeholders}, what the one line must contain)
CASES = [
    # ebrm train
    ("train --out is a file", "train --features {store} --out {afile}", "--out {afile} is a file"),
    ("train refuses to replace a model", "train --features {store} --out {model}",
     "--out {model} already holds a result; pass --overwrite"),
    ("train --out holds other files", "train --features {store} --out {notes}",
     "holds no model and no feature store"),
    ("train --features is a model", "train --features {model} --out {root}/m2",
     "--features {model} is an ebrm refined-model directory"),
    ("train --features missing", "train --features {root}/nope --out {root}/m2",
     "--features {root}/nope does not exist"),
    ("train --preset", "train --features {store} --out {root}/m2 --preset big",
     "--preset: 'big' is not one of 'small-data', 'paper'"),
    ("train --objective", "train --features {store} --out {root}/m2 --objective dpo",
     "--objective: 'dpo' is not one of"),
    ("train --steps 0", "train --features {store} --out {root}/m2 --steps 0", "--steps"),
    ("train --device", "train --features {store} --out {root}/m2 --device gpu9",
     "'gpu9' is not a torch device"),
    # ebrm extract
    ("extract --rm is a refined model", "extract --rm {model} --data {pairs} --out {root}/s2",
     "--rm {model} is an ebrm refined-model directory"),
    ("extract --rm is a feature store", "extract --rm {store} --data {pairs} --out {root}/s2",
     "--rm {store} is a feature store"),
    ("extract --rm missing", "extract --rm {root}/nope --data {pairs} --out {root}/s2",
     "--rm {root}/nope does not exist"),
    # a relative path that is missing reads as a hub id too: offline and not cached, it is
    # refused at once (it once loaded the data and torch, then printed the hub's message)
    ("extract --rm missing, relative", "extract --rm runs/nope --data {pairs} --out {root}/s2",
     "--rm runs/nope does not exist here, and as a hub id it is not in the local Hugging Face "
     "cache (HF_HUB_OFFLINE=1"),
    # a store at --out resumes only with its own settings: refused before torch loads
    ("extract --out store of another max length", "extract --rm {rm} --data {pairs} --out "
     "{root}/store-ml --max-length 32", "--out {root}/store-ml is a feature store extracted "
     "with --max-length 64, not 32: pass its settings to resume it"),
    ("extract --out store of another truncation side", "extract --rm {rm} --data {pairs} "
     "--out {root}/store-ts", "--truncation-side right, not left"),
    ("extract --data missing", "extract --rm {rm} --data {root}/nope.jsonl --out {root}/s2",
     "--data {root}/nope.jsonl does not exist"),
    ("extract --out is a file", "extract --rm {rm} --data {pairs} --out {afile}",
     "--out {afile} is a file"),
    ("extract --out holds other files", "extract --rm {rm} --data {pairs} --out {notes}",
     "--out {notes} is a directory that holds no model"),
    ("extract --truncation-side", "extract --rm {rm} --data {pairs} --out {root}/s2 "
     "--truncation-side middle", "--truncation-side: 'middle' is not one of 'left', 'right'"),
    # ebrm score
    ("score --out is a directory", "score --model {model} --features {store} --out {emptydir}",
     "--out {emptydir} is a directory; pass a file name"),
    ("score refuses to replace a file", "score --model {model} --features {store} "
     "--out {scores}", "--out {scores} already exists; pass --overwrite"),
    ("score --features is an HF model", "score --model {model} --features {rm} --out {root}/s.j",
     "--features {rm} is a Hugging Face model directory"),
    # ebrm eval
    ("eval --out is a file", "eval --model {model} --benchmark pairwise --data {pairs} "
     "--out {afile}", "--out {afile} is a file"),
    ("eval refuses to replace a report", "eval --model {model} --benchmark pairwise "
     "--data {pairs} --out {report}", "--out {report} already holds a result"),
    ("eval --model is a feature store", "eval --model {store} --benchmark pairwise "
     "--data {pairs} --out {root}/e", "--model {store} is a feature store"),
    ("eval --model is an HF model", "eval --model {rm} --benchmark pairwise --data {pairs} "
     "--out {root}/e", "--model {rm} is a Hugging Face model directory"),
    ("eval --benchmark", "eval --model {model} --benchmark mmlu --data {pairs} --out {root}/e",
     "--benchmark: 'mmlu' is not one of 'pairwise', 'rm-bench', 'reward-bench'"),
    ("eval --base-rm is a refined model", "eval --model {model} --benchmark pairwise "
     "--data {pairs} --out {root}/e --base-rm {model}", "--base-rm {model} is an ebrm"),
    # ebrm serve
    ("serve --port in use", "serve --model {model} --port {port}",
     "--port {port} cannot be bound"),
    ("serve --model missing", "serve --model {root}/nope", "--model {root}/nope does not exist"),
    ("serve --reward", "serve --model {model} --reward best", "--reward: 'best' is not one of"),
    ("serve --token empty", "serve --model {model} --token=", "--token is empty"),
    # ebrm bon
    ("bon --candidates is a directory", "bon --model {model} --candidates {emptydir} "
     "--out {root}/b.jsonl", "--candidates {emptydir} is a directory; expected a JSONL file"),
    ("bon refuses to replace a file", "bon --model {model} --candidates {cands} "
     "--out {scores}", "--out {scores} already exists"),
    ("bon --model is a feature store", "bon --model {store} --candidates {cands} "
     "--out {root}/b.jsonl", "--model {store} is a feature store"),
    # a model with a store, a flag or a setting its features were not made with (issue 17)
    ("score --features of another max length", "score --model {model} --features "
     "{root}/store-ml --out {root}/s.j", "max length 128 vs 64"),
    ("score --features of another truncation side", "score --model {model} --features "
     "{root}/store-ts --out {root}/s.j", "truncation side 'left' vs 'right'"),
    ("eval --features of another max length", "eval --model {model} --benchmark pairwise "
     "--data {pairs} --out {root}/e --features {root}/store-ml", "max length 128 vs 64"),
    ("eval --features of another RM", "eval --model {model} --benchmark pairwise "
     "--data {pairs} --out {root}/e --features {store}", "--features {store} come from"),
    ("eval --max-length", "eval --model {model} --benchmark pairwise --data {pairs} "
     "--out {root}/e --max-length 256", "--max-length 256 differs from the max length 128"),
    ("eval --truncation-side", "eval --model {model} --benchmark pairwise --data {pairs} "
     "--out {root}/e --truncation-side right",
     "--truncation-side right differs from the truncation side left"),
    ("bon --features of another truncation side", "bon --model {model} --candidates {cands} "
     "--out {root}/b.jsonl --features {root}/store-ts", "truncation side 'left' vs 'right'"),
    ("bon --max-length", "bon --model {model} --candidates {cands} --out {root}/b.jsonl "
     "--max-length 64", "--max-length 64 differs from the max length 128"),
    ("serve --max-length", "serve --model {model} --max-length 512",
     "--max-length 512 differs from the max length 128"),
    ("serve --truncation-side", "serve --model {model} --truncation-side right",
     "drop --truncation-side"),
    # --device-map and its companions (issue 23)
    ("extract --device-map with --device", "extract --rm {rm} --data {pairs} --out {root}/s2 "
     "--device-map auto --device cpu", "--device cpu and --device-map auto contradict"),
    ("extract --max-memory without --device-map", "extract --rm {rm} --data {pairs} "
     "--out {root}/s2 --max-memory cpu=1GiB", "--max-memory applies only with --device-map"),
    ("eval --max-memory unreadable", "eval --model {model} --benchmark pairwise --data {pairs} "
     "--out {root}/e --device-map auto --max-memory lots", "--max-memory 'lots': cannot read"),
    ("bon --offload-folder without --device-map", "bon --model {model} --candidates {cands} "
     "--out {root}/b.jsonl --offload-folder {root}/off", "--offload-folder applies only with"),
    ("serve --offload-folder is a file", "serve --model {model} --device-map auto "
     "--offload-folder {afile}", "--offload-folder {afile} is a file"),
    ("serve --device-map", "serve --model {model} --device-map everywhere",
     "--device-map: 'everywhere' is not one of"),
    # ebrm base-rm train
    ("base-rm --out holds a model", "base-rm train --model {rm} --data {pairs} --out {model}",
     "--out {model} is an ebrm refined-model directory"),
    ("base-rm --model is a refined model", "base-rm train --model {model} --data {pairs} "
     "--out {root}/rm2", "--model {model} is an ebrm refined-model directory"),
    ("base-rm --lr 0", "base-rm train --data {pairs} --out {root}/rm2 --lr 0", "--lr"),
    ("base-rm --features-out holds files", "base-rm train --data {pairs} --out {root}/rm2 "
     "--features-out {notes}", "--features-out {notes} is a directory that holds no model"),
    ("base-rm --out holds its RM", "base-rm train --data {pairs} --out {baserm}",
     "--out {baserm} already holds a result; pass --overwrite"),
    ("base-rm --overwrite of an RM it did not write", "base-rm train --data {pairs} "
     "--out {rm} --overwrite", "--out {rm} is a Hugging Face model directory (a base RM) that "
     "`ebrm base-rm train` did not write"),
    ("base-rm --overwrite of notes", "base-rm train --data {pairs} --out {notes} --overwrite",
     "--out {notes} is a directory that holds no model and no feature store, which this "
     "command does not replace"),
    ("base-rm --features-out holds a store", "base-rm train --data {pairs} --out {root}/rm2 "
     "--features-out {store}", "--features-out {store} already holds a result; pass --overwrite"),
    # ebrm extract --reuse
    ("extract --reuse is a model", "extract --rm {rm} --data {pairs} --out {root}/s2 "
     "--reuse {model}", "--reuse {model} is an ebrm refined-model directory"),
    ("extract --reuse is --out", "extract --rm {rm} --data {pairs} --out {store} "
     "--reuse {store}", "is the --out store itself"),
    # ebrm overopt, demo
    ("overopt --out is a file", "overopt --data {pairs} --out {afile}", "--out {afile} is a file"),
    ("overopt --data missing", "overopt --data {root}/nope.jsonl --out {root}/o",
     "--data {root}/nope.jsonl does not exist"),
    ("overopt --label-noise", "overopt --data {pairs} --out {root}/o --label-noise 0.7",
     "--label-noise must be a non-empty tuple of floats in [0, 0.5)"),
    ("demo --out is a file", "demo --out {afile}", "--out {afile} is a file"),
    ("demo --data missing", "demo --out {root}/d --data {root}/nope.jsonl",
     "--data {root}/nope.jsonl does not exist"),
]  # fmt: skip


def run_cli(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, dict]:
    """`ebrm ARGS` in a fresh interpreter (RUNNER): the process and what RUNNER recorded
    (exit code, seconds, whether torch was imported)."""
    result_file = cwd / "result.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(result_file), *args],
        capture_output=True, text=True, env=env, timeout=120, cwd=cwd,
    )  # fmt: skip
    return proc, json.loads(result_file.read_text())


def _tree(root: Path) -> dict[str, str]:
    """Every file under `root` and its sha256: nothing may change."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(("case", "argv", "expected"), CASES, ids=[c[0] for c in CASES])
def test_user_error(case, argv, expected, world, tmp_path):
    root = world["root"]
    busy = _busy_port()
    names = {
        "root": root, "rm": world["rm"], "model": root / "model", "store": root / "store",
        "pairs": root / "pairs.jsonl", "cands": root / "cands.jsonl", "afile": root / "afile",
        "scores": root / "scores.jsonl", "emptydir": root / "emptydir", "notes": root / "notes",
        "report": root / "report", "baserm": root / "baserm", "port": busy.getsockname()[1],
    }  # fmt: skip
    before = _tree(root)
    try:
        proc, result = run_cli(argv.format(**names).split(), tmp_path)
    finally:
        busy.close()
    print(f"{case}: exit {result['code']} after {result['seconds']:.2f} s")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert result["code"] == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert expected.format(**names) in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert ".tmp" not in lines[0]  # never an internal temporary name
    assert not result["torch"], "stopped only after importing torch (a model could have loaded)"
    assert _tree(root) == before  # nothing written, nothing lost
    assert not (root / "m2").exists() and not (root / "s2").exists()
