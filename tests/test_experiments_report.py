"""experiments/report.py: the targets it judges and the results-page block it writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scripts import load_script

report = load_script(Path("experiments/report.py"), "experiments_report")


def _row(seed: int, label: str, base_acc: float, refined: float, *, noise=0.0, chat=0.0):
    """One cell row in the schema experiments/run.py writes (only the fields report reads)."""
    delta = refined - base_acc
    return {
        "base": "minilm-frozen",
        "noise": noise,
        "seed": seed,
        "label": label,
        "hh": {
            "n": 100,
            "base": base_acc,
            "refined": refined,
            "delta": delta,
            "ci95": [delta - 0.02, delta + 0.02],
            "mcnemar_p": 0.5,
            "ece_base": 0.04,
            "ece_refined": 0.03,
            "brier_base": 0.24,
            "brier_refined": 0.25,
        },
        "rmbench": {
            dom: {"base": 0.5, "refined": 0.5 + d, "delta": d, "ci95": [d - 0.01, d + 0.01]}
            for dom, d in (("chat", chat), ("safety", 0.0))
        },
    }


@pytest.fixture
def rows():
    clean = {0: 0.60, 1: 0.62}
    out = []
    for seed, acc in clean.items():
        out.append(_row(seed, report.DEFAULT, acc, acc + 0.004, chat=-0.008 - 0.004 * seed))
        out.append(_row(seed, "nce+margin", acc, acc + 0.02))
        out.append({**_row(seed, "reference: fresh MLP", acc, acc - 0.01), "method": "mlp"})
        # 40% noise: the base loses 6 points, the default gets 2 of them back
        out.append(_row(seed, report.DEFAULT, acc - 0.06, acc - 0.04, noise=0.4))
    return out


def _target(lines: list[str], start: str) -> list[str]:
    (line,) = [line for line in lines if line.startswith(f"| {start}")]
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_targets_are_judged_on_the_means_over_seeds(rows):
    lines = report.targets_section(rows)
    # chat deltas -0.8 and -1.2 points: mean -1.0 is on the bar, so "yes"
    _, measured, met = _target(lines, "default does no harm")
    assert "RM-Bench chat -1.0" in measured and "HH test +0.4" in measured and met == "yes"
    _, measured, met = _target(lines, "best mode")
    assert measured == "nce+margin: +2.0; mlp reference head -1.0" and met == "yes"
    # these rows have no calibrated base: a raw sigmoid is not compared with a scaled P
    _, measured, met = _target(lines, "ECE refined")
    assert met == "?" and "not measured like for like" in measured
    _, measured, met = _target(lines, "40% noise: default")
    assert measured == "lost 6.0 pts, Δ +2.0 pts (+33%)" and met == "yes"


def test_update_results_page_replaces_only_the_marked_block(rows, tmp_path):
    readme = tmp_path / "results.md"
    readme.write_text(
        f"# intro\n\n{report.RESULTS_BEGIN}\nstale table\n{report.RESULTS_END}\n\n## after\n"
    )
    report.update_results_page(readme, rows, command="python experiments/run.py X")
    text = readme.read_text()
    assert text.startswith("# intro\n\n") and text.endswith(f"{report.RESULTS_END}\n\n## after\n")
    assert "stale table" not in text
    # these rows recorded no command: the fallback names them, once
    assert text.count("```bash\npython experiments/run.py X\n```") == 1
    block = text[text.index(report.RESULTS_BEGIN) : text.index(report.RESULTS_END)]
    assert "#### Targets" in block and "Per seed" not in block.split("Per-seed rows")[0]


def test_update_results_page_without_markers_says_what_to_add(rows, tmp_path):
    readme = tmp_path / "results.md"
    readme.write_text("# no markers\n")
    with pytest.raises(SystemExit, match="RESULTS:BEGIN"):
        report.update_results_page(readme, rows, command="c")
    assert readme.read_text() == "# no markers\n"


def test_the_block_names_every_command_that_wrote_its_cells_once(rows, tmp_path):
    frozen = "python experiments/run.py --base frozen"
    tuned = "python experiments/run.py --base finetuned --noise 0.4"
    recorded = [{**r, "command": frozen} for r in rows]
    recorded.append({**rows[0], "base": "minilm-finetuned", "noise": 0.4, "command": tuned})
    recorded.append({**rows[1], "base": "minilm-finetuned", "noise": 0.4, "command": tuned})
    assert report.commands(list(reversed(recorded))) == [frozen, tuned]  # frozen base first
    # a cell without a recorded command is named by the fallback, never silently dropped
    assert report.commands([*recorded, rows[0]], "old") == [frozen, "old", tuned]
    readme = tmp_path / "results.md"
    readme.write_text(f"{report.RESULTS_BEGIN}\n{report.RESULTS_END}\n")
    report.update_results_page(readme, recorded, rendered_by="python experiments/report.py R")
    text = readme.read_text()
    assert f"```bash\n{frozen}\n{tuned}\n```" in text
    assert "Rendered by `python experiments/report.py R`." in text


def test_noise_table_shows_only_the_variants_that_ran(rows):
    header = report.noise_table(rows)[0]
    # only the default ran under noise here: no empty columns for paper / nce+bt / references
    assert report.DEFAULT in header and "nce+bt" not in header and "paper" not in header
