"""RM-Bench scoring: the 3x3 chosen-vs-rejected matrix per prompt, Easy/Normal/Hard, domains.

From the RM-Bench paper and its `scripts/utils.py` (see ../shared/data/README.md): for each
prompt A[i][j] = 1 if score(chosen[i]) > score(rejected[j]) (strict; a tie is wrong), with
styles 0 concise, 1 detailed plain, 2 detailed markdown. Matrices are averaged over the
prompts of a domain; Hard = mean of the upper-right triangle (i < j), Normal = the diagonal,
Easy = the lower-left triangle (i > j); a domain's avg is the mean of the three; the
safety-refuse and safety-response prompts are pooled into one "safety" domain before
averaging; Overall = mean of the domains present, which is the leaderboard's Overall only
when all four domains are (metrics.json's "complete" says so).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ebrm.data.types import Conversation, RMBenchItem
from ebrm.evaluation.benchmark import BenchmarkBase, ci_text, pct, reward_names, signed
from ebrm.evaluation.metrics import as_numpy, bootstrap_ci, paired_difference, verdict
from ebrm.evaluation.units import Units, UnitScores

DOMAINS = ("chat", "code", "math", "safety")
_UPPER = np.triu(np.ones((3, 3), dtype=bool), k=1)  # i < j: hard
_LOWER = np.tril(np.ones((3, 3), dtype=bool), k=-1)  # i > j: easy
_DIAG = np.eye(3, dtype=bool)  # normal


def domain_of(name: str) -> str:
    """Pool RM-Bench subset names into domains: safety-refuse/-response -> safety."""
    name = name.strip().lower()
    return "safety" if name.startswith("safety") else name


def matrices(chosen: Any, rejected: Any) -> np.ndarray:
    """(P, 3, 3) bool: A[p, i, j] = chosen[p, i] > rejected[p, j] (strict)."""
    c, r = as_numpy(chosen), as_numpy(rejected)
    if c.ndim != 2 or c.shape[1] != 3 or c.shape != r.shape:
        raise ValueError(
            f"RM-Bench scores must be (prompts, 3) for chosen and rejected; got {c.shape}, "
            f"{r.shape}"
        )
    return c[:, :, None] > r[:, None, :]


def prompt_scores(mats: np.ndarray) -> np.ndarray:
    """(P,) per-prompt mean of (easy, normal, hard); a domain's avg is their mean over prompts.

    The triangles have 3 cells each, so the domain avg (mean of three means over prompts)
    equals the mean over prompts of this per-prompt value: that is what makes a bootstrap
    over prompts valid.
    """
    m = mats.astype(np.float64)
    return (m[:, _LOWER].mean(1) + m[:, _DIAG].mean(1) + m[:, _UPPER].mean(1)) / 3.0


def _levels(mean_matrix: np.ndarray) -> dict[str, float]:
    easy = float(mean_matrix[_LOWER].mean())
    normal = float(mean_matrix[_DIAG].mean())
    hard = float(mean_matrix[_UPPER].mean())
    return {"easy": easy, "normal": normal, "hard": hard, "avg": (easy + normal + hard) / 3.0}


def rmbench_side(
    domains: Sequence[str], chosen: Any, rejected: Any, *, n_boot: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """One side's RM-Bench scores.

    Args:
        domains: (P,) domain or subset name per prompt (safety-* pooled into "safety").
        chosen, rejected: (P, 3) scores in style order (concise, detailed, markdown).
        n_boot, seed: bootstrap over prompts (stratified by domain) for "overall_ci95".

    Returns:
        {domain: {"easy", "normal", "hard", "avg", "ci95", "n", "matrix"}, ..., "overall"};
        domains in the order chat, code, math, safety, then others. Only domain objects and
        "overall" sit at this level (the metrics.json contract); see `overall_interval`.
    """
    pooled = np.asarray([domain_of(d) for d in domains])
    mats = matrices(chosen, rejected)
    if pooled.shape[0] != mats.shape[0]:
        raise ValueError(f"{pooled.shape[0]} domain labels for {mats.shape[0]} prompts")
    present = _ordered_domains(pooled)
    out: dict[str, Any] = {}
    for dom in present:
        mean_matrix = mats[pooled == dom].astype(np.float64).mean(axis=0)
        out[dom] = {
            **_levels(mean_matrix),
            "ci95": bootstrap_ci(prompt_scores(mats[pooled == dom]), n_boot=n_boot, seed=seed),
            "n": int((pooled == dom).sum()),
            "matrix": mean_matrix.tolist(),
        }
    out["overall"] = float(np.mean([out[d]["avg"] for d in present]))
    return out


def overall_interval(
    domains: Sequence[str], chosen: Any, rejected: Any, *, n_boot: int = 2000, seed: int = 0
) -> list[float]:
    """95% bootstrap interval of Overall, resampling prompts within each domain."""
    pooled = np.asarray([domain_of(d) for d in domains])
    return bootstrap_ci(
        prompt_scores(matrices(chosen, rejected)), strata=pooled, n_boot=n_boot, seed=seed
    )


def _ordered_domains(pooled: np.ndarray) -> list[str]:
    found = set(pooled.tolist())
    return [d for d in DOMAINS if d in found] + sorted(found - set(DOMAINS))


class RMBench(BenchmarkBase):
    """RM-Bench: per prompt, the 3x3 style matrix; Easy/Normal/Hard per domain, Overall."""

    name = "rm-bench"
    unit = "prompts"
    primary_metric = "overall"
    what = "RM-Bench overall"

    def load(self, spec: str, *, limit: int | None = None) -> list[RMBenchItem]:
        from ebrm.data import load_rmbench

        return load_rmbench(spec, limit=limit)

    def responses(self, rows: Sequence[RMBenchItem]) -> tuple[list[Conversation], Units]:
        """Per prompt six responses, chosen then rejected in style order: rows 6p .. 6p + 5."""
        rows = self.rows_of(rows, RMBenchItem, "RM-Bench items (3 x 3 responses)")
        convs = [
            Conversation(messages=item.messages, response=text)
            for item in rows
            for text in (*item.chosen, *item.rejected)
        ]
        grid = np.arange(6 * len(rows)).reshape(len(rows), 2, 3)  # (P, chosen/rejected, style)
        return convs, Units.of(
            grid[:, 0], grid[:, 1], labels=[item.domain for item in rows],
            ids=[item.id for item in rows],
        )  # fmt: skip

    def side(self, units: Units, scores: UnitScores, *, n_boot: int, seed: int) -> dict:
        return rmbench_side(units.label_array(), scores.chosen, scores.rejected,
                            n_boot=n_boot, seed=seed)  # fmt: skip

    def paired(
        self,
        units: Units,
        base: UnitScores,
        other: UnitScores,
        *,
        n_boot: int,
        seed: int,
        who: str,
    ) -> dict:
        pooled = np.asarray([domain_of(d) for d in units.label_array()])
        opts = {"n_boot": n_boot, "seed": seed}
        sb = prompt_scores(matrices(base.chosen, base.rejected))
        so = prompt_scores(matrices(other.chosen, other.rejected))
        delta: dict[str, Any] = {}
        for dom in _ordered_domains(pooled):
            mask = pooled == dom
            delta[dom] = paired_difference(sb[mask], so[mask], mcnemar=False, **opts)
        delta["overall"] = paired_difference(sb, so, strata=pooled, mcnemar=False, **opts)
        what = self.what
        if len(present := set(pooled.tolist())) < len(DOMAINS):  # not the published Overall
            what = f"{what} over {len(present)} of {len(DOMAINS)} domains (incomplete)"
        delta["verdict"] = verdict(delta["overall"], unit="prompts", what=what, who=who)
        return delta

    def top_level(self, units, scores, *, n_boot, seed):
        """Overall's interval per reward, and whether all four domains are present."""
        pooled = np.asarray([domain_of(d) for d in units.label_array()])
        missing = [d for d in DOMAINS if d not in set(pooled.tolist())]
        return {
            "overall_ci95": {
                name: overall_interval(pooled, s.chosen, s.rejected, n_boot=n_boot, seed=seed)
                for name, s in scores.items()
            },
            # RM-Bench's Overall is the mean of all four domains; over fewer it is not
            # the leaderboard's number.
            "complete": not missing,
            "missing_domains": missing,
        }

    def examples(self, units: Units, scores: UnitScores) -> list[dict[str, Any]]:
        """One record per prompt in RM-Bench's own result layout: id, domain, and the
        three chosen and three rejected scores in style order (concise, detailed,
        markdown), the lists RM-Bench's `compute_accuracy` reads."""
        ids = units.ids or tuple(str(i) for i in range(len(units)))
        labels = units.label_array()
        return [
            {
                "id": ids[i],
                "domain": str(labels[i]),
                "score_chosen": [float(x) for x in scores.chosen[i]],
                "score_rejected": [float(x) for x in scores.rejected[i]],
            }
            for i in range(len(units))
        ]

    def side_rows(self, metrics):
        base = metrics["base"]
        rows = []
        for dom, entry in base.items():
            if isinstance(entry, Mapping):
                levels = ("easy", "normal", "hard", "avg")
                rows += [(f"{dom} {lv} (%)", (dom, lv), pct) for lv in levels]
        return [*rows, (f"{self.primary_label(metrics, 'overall')} (%)", ("overall",), pct)]

    def coverage(self, metrics):
        if metrics.get("complete", True):
            return None
        missing = metrics.get("missing_domains") or []
        return len(DOMAINS) - len(missing), len(DOMAINS), "domains"

    def delta_cell(self, delta, key):
        if key == ("overall",):
            return signed(delta.get("overall", {}).get("delta"))
        if len(key) == 2 and key[1] == "avg":
            return signed(delta.get(key[0], {}).get("delta"))
        return None

    def delta_rows(self, metrics, names, deltas):
        cis = metrics.get("overall_ci95", {})
        others = [n for n in names if n != "base"]
        return [(
            "overall 95% CI",
            *(ci_text(cis.get(n)) for n in names),
            *(ci_text(deltas.get(n, {}).get("overall", {}).get("ci95")) for n in others),
        )]  # fmt: skip

    def plots(self, metrics, out_dir, *, dpi=None):
        from ebrm.evaluation import plots

        sides = {n: metrics[n] for n in reward_names(metrics)}
        path = plots.rmbench_heatmaps(
            out_dir / "rmbench_heatmaps.png", sides, dpi=dpi or plots.DPI,
            **plots.labels_of(metrics),
        )  # fmt: skip
        return {"RM-Bench 3x3 matrices": path}


def rmbench_metrics(
    domains: Sequence[str],
    base_chosen: Any,
    base_rejected: Any,
    refined_chosen: Any,
    refined_rejected: Any,
    *,
    data: str = "",
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """The rm-bench metrics.json object of base vs refined (P, 3) scores, with paired deltas.

    "delta" has one entry per domain (its avg) and "overall", each with a paired bootstrap
    interval over prompts (stratified by domain for overall), and the verdict on overall.
    """
    n = len(domains)
    units = Units.of(np.arange(3 * n).reshape(n, 3), np.arange(3 * n).reshape(n, 3),
                     labels=list(domains))  # fmt: skip
    scores = {
        "base": UnitScores(as_numpy(base_chosen), as_numpy(base_rejected)),
        "refined": UnitScores(as_numpy(refined_chosen), as_numpy(refined_rejected)),
    }
    out = RMBench().metrics(units, scores, n_boot=n_boot, seed=seed)
    return {"benchmark": out.pop("benchmark"), "data": data, **out}
