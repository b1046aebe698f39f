"""docs/performance.md and docs/reliability.md: their BENCH blocks are exactly what
benchmarks/render_docs.py renders from the committed benchmarks/results/*.json (so a hand
edit inside a block fails here), and the renderer's tables follow from the results."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


def _load():
    return load_script(Path("benchmarks/render_docs.py"), "render_docs")


rd = _load()


def test_the_committed_pages_are_what_the_committed_results_render():
    assert rd.render(check=True) == []


def test_every_block_has_a_result_and_every_result_a_block():
    names = set()
    for page in sorted((ROOT / "docs").glob("*.md")):
        names |= {m.group("name") for m in rd.BLOCK.finditer(page.read_text())}
    assert names == set(rd.load_results())
    assert {"reliability", "energy-cpu-time", "extract", "server", "scale"} <= names


def test_a_hand_edit_inside_a_block_is_stale_and_render_undoes_it(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(ROOT / "docs" / "performance.md", docs / "performance.md")
    text = (docs / "performance.md").read_text()
    edited = text.replace("| short | micro-batched | 123.7 |", "| short | micro-batched | 150.0 |")
    assert edited != text
    (docs / "performance.md").write_text(edited)
    assert rd.render(check=True, docs=docs) == [docs / "performance.md"]
    rd.render(docs=docs)
    assert (docs / "performance.md").read_text() == text


def test_each_block_names_command_date_machine_and_load():
    for name, entry in rd.load_results().items():
        body = rd.render_block(entry)
        assert f"`{entry['command']}`" in body, name
        assert entry["date"] in body and entry["machine"]["cpu"] in body, name
        assert "load average during the run" in body and f"*{entry['conditions']}*" in body
        assert entry["conditions"] in ("quiet", "shared")
        if not entry["source"].startswith("measured"):
            assert "transcribed from the measured printout of" in body


def test_energy_table_speed_ups_follow_from_the_seconds():
    # a bench_energy.py --json object (the keys it prints), with round numbers
    r = {
        "clock": "process_time", "threads": 1, "loss_rel_diff": 0.0, "peak_rss_mb": 8000.0,
        "shapes": {"dim": 4096, "batch": 256, "negatives": 768, "widths": [1024, 512],
                   "responses": 1024},
        "train_step_naive_s": 80.0, "train_step_s": 16.0, "refine_paper_published_s": 24.0,
        "refine_paper_s": 1.6, "refine_grid_s": 0.8, "refine_grid_bf16_s": 1.5,
    }  # fmt: skip
    lines = rd.FORMATS["bench_energy"](r)
    assert lines[0] == "| what | CPU s (1 thread) | speed-up |"
    step = next(ln for ln in lines if ln.startswith("| NCE+ training step, ebrm |"))
    assert step == "| NCE+ training step, ebrm | 16.00 | 5.0x |"  # 80 / 16
    grid = next(ln for ln in lines if "`grid` mode, coarse to fine" in ln)
    assert "| 0.80 | 30.0x vs the published loop; 2.00x our `paper` mode |" in grid  # 24/0.8


def test_reliability_table_has_a_row_per_target_with_its_count():
    counts = {"server /score": {"tried": 60, "200": 58, "422": 2}, "cli argv": {"tried": 3, "2": 3}}
    table = rd.FORMATS["reliability"](counts)
    assert table[2] == "| cli argv | 3 | 2: 3 |"
    assert table[3] == "| server /score | 60 | 200: 58, 422: 2 |"


def test_machine_is_read_from_this_machine():
    m = rd.machine()
    assert m["cores"] == os.cpu_count()
    if Path("/proc/cpuinfo").is_file():
        models = [ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln]
        if models:
            assert m["cpu"] == models[0].split(":", 1)[1].strip()


def test_a_block_without_a_result_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match="no benchmarks/results/nope.json"):
        rd.render_page("<!-- BENCH:nope:BEGIN -->\n<!-- BENCH:nope:END -->\n", {})
