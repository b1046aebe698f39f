"""Statistical tests shared by every stage (training, refinement, evaluation).

A leaf module (it imports nothing from ebrm), so the energy trainer and the evaluation
metrics use the same test without one stage importing another.
"""

from __future__ import annotations


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value: binomial test of b vs c discordant pairs at p = 1/2.

    Args:
        b, c: the discordant counts (pairs only the first is right on, only the second).

    Returns:
        p in [0, 1]; 1.0 when there are no discordant pairs.

    Raises:
        ValueError: a negative count.

    scipy's `binomtest` rather than a hand-written tail sum: it is the field's reference
    implementation, and at p = 1/2 (a symmetric binomial) its two-sided p-value is exactly
    min(1, 2 * P(X <= min(b, c))), the textbook exact McNemar test.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0; got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0  # binomtest needs n >= 1; with no disagreement there is no evidence
    # Imported here, not at module level: scipy.stats takes ~2 s to import and starts its
    # BLAS thread pool, which every `import ebrm.energy` would then pay for (and processes
    # that fork after importing ebrm, like tests/reliability's fork server, must not have).
    from scipy.stats import binomtest

    return float(binomtest(int(b), int(n), 0.5, alternative="two-sided").pvalue)
