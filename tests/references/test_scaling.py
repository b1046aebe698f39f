"""The chunked references give the numbers of the previous (whole-matrix) implementation.

Tolerance: MAP weights, Laplace covariance and std, ensemble heads and outputs within 1e-6
relative to their largest entry; the same chosen prior precision for both references; the
same bootstrap draws (`bootstrap_counts` is unchanged). The baseline is
`ebrm.references._reference_impl`, the code as it was.
"""

import pytest
import torch

from ebrm.references import _pairs
from ebrm.references import _reference_impl as baseline
from ebrm.references._pairs import PairRows
from ebrm.references.fit import fit_pair_references
from ebrm.references.laplace import fit_laplace

RTOL = 1e-6


def _close(new, old):
    scale = float(old.abs().max())
    assert float((new - old).abs().max()) <= RTOL * scale


def _problem(n=400, dim=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    emb = torch.randn(2 * n, dim, generator=gen)
    true_w = torch.randn(dim, generator=gen)
    a, b = torch.arange(0, 2 * n, 2), torch.arange(1, 2 * n, 2)
    first = torch.rand(n, generator=gen) < torch.sigmoid((emb[a] - emb[b]) @ true_w)
    return emb, torch.where(first, a, b), torch.where(first, b, a)


@pytest.mark.parametrize("cache_bytes", [0, _pairs.CACHE_BYTES])  # streamed every pass, or kept
@pytest.mark.parametrize("table_dtype", [torch.float32, torch.float16])
def test_references_match_the_baseline_by_index_in_small_chunks(
    table_dtype, cache_bytes, monkeypatch
):
    monkeypatch.setattr(_pairs, "CACHE_BYTES", cache_bytes)
    emb, chosen, rejected = _problem()
    emb = emb.to(table_dtype)  # an fp16 store is read as such, chunk by chunk
    nt = 300
    train = PairRows(emb, emb, chosen[:nt], rejected[:nt], chunk_size=64)
    val = PairRows(emb, emb, chosen[nt:], rejected[nt:], chunk_size=64)
    refs = fit_pair_references(train, val, ensemble_size=4, seed=5)

    tc, tr = emb[chosen[:nt]].float(), emb[rejected[:nt]].float()
    vc, vr = emb[chosen[nt:]].float(), emb[rejected[nt:]].float()
    old_lap, old_lap_report = baseline.fit_laplace(tc, tr, vc, vr)
    old_ens, old_ens_report = baseline.fit_ensemble(tc, tr, vc, vr, size=4, seed=5)

    lap, ens = refs.rewards["laplace"], refs.rewards["ensemble"]
    assert refs.report["laplace"]["prior_multiple"] == old_lap_report["prior_multiple"]
    assert lap.prior_precision == pytest.approx(old_lap.prior_precision, rel=RTOL)
    assert refs.report["laplace"]["val_nll"] == pytest.approx(old_lap_report["val_nll"], rel=RTOL)
    _close(lap.weight, old_lap.weight)
    _close(lap.covariance, old_lap.covariance)
    _close(lap.center, old_lap.center)
    probe = emb[:50].float()
    for new, old in zip(lap.predict(probe), old_lap.predict(probe), strict=True):
        _close(new, old)

    assert ens.prior_precision == pytest.approx(old_ens.prior_precision, rel=RTOL)
    for new, old in zip(refs.report["ensemble"]["tried"], old_ens_report["tried"], strict=True):
        assert new["val_nll"] == pytest.approx(old["val_nll"], rel=RTOL)
    _close(ens.weights, old_ens.weights)
    for new, old in zip(ens.predict(probe), old_ens.predict(probe), strict=True):
        _close(new, old)
    _close(ens.p_better(probe[:25], probe[25:], calibrated=False),
           old_ens.p_better(probe[:25], probe[25:], calibrated=False))  # fmt: skip


def test_diagonal_laplace_matches_the_baseline():
    emb, chosen, rejected = _problem(n=300, dim=6, seed=1)
    tc, tr, vc, vr = emb[chosen[:200]], emb[rejected[:200]], emb[chosen[200:]], emb[rejected[200:]]
    new, new_report = fit_laplace(tc, tr, vc, vr, max_full_dim=3)
    old, old_report = baseline.fit_laplace(tc, tr, vc, vr, max_full_dim=3)
    assert new.diagonal and old.diagonal
    assert new_report["prior_multiple"] == old_report["prior_multiple"]
    assert all(t["exact"] for t in new_report["tried"])  # the diagonal criterion is exact
    _close(new.weight, old.weight)
    _close(new.covariance, old.covariance)


def test_without_validation_the_default_precision_matches_the_baseline():
    emb, chosen, rejected = _problem(n=200, dim=5, seed=2)
    refs = fit_pair_references(PairRows(emb, emb, chosen, rejected), None, ensemble_size=3)
    old_lap, _ = baseline.fit_laplace(emb[chosen], emb[rejected])
    old_ens, _ = baseline.fit_ensemble(emb[chosen], emb[rejected], size=3)
    _close(refs.rewards["laplace"].weight, old_lap.weight)
    _close(refs.rewards["laplace"].covariance, old_lap.covariance)
    _close(refs.rewards["ensemble"].weights, old_ens.weights)


def test_the_laplace_search_is_exact_where_it_chooses():
    """The chosen precision's NLL is computed with its own Hessian, and beats every other
    candidate's (approximate) NLL; computing every candidate exactly picks the same one."""
    emb, chosen, rejected = _problem(n=500, dim=10, seed=3)
    tc, tr, vc, vr = emb[chosen[:350]], emb[rejected[:350]], emb[chosen[350:]], emb[rejected[350:]]
    _, report = fit_laplace(tc, tr, vc, vr)
    best = min(range(len(report["tried"])), key=lambda j: report["tried"][j]["val_nll"])
    assert report["tried"][best]["exact"]
    _, old_report = baseline.fit_laplace(tc, tr, vc, vr)
    assert report["prior_multiple"] == old_report["prior_multiple"]
    for new, old in zip(report["tried"], old_report["tried"], strict=True):
        if new["exact"]:
            assert new["val_nll"] == pytest.approx(old["val_nll"], rel=RTOL)


def test_kept_chunks_are_the_streamed_ones(monkeypatch):
    """Small data keeps the gathered differences after the first pass; the second pass
    yields the same chunks as a fresh gather."""
    emb, chosen, rejected = _problem(n=150, dim=5)
    pairs = PairRows(emb, emb, chosen, rejected, chunk_size=64)
    first = list(pairs.chunks())
    assert pairs._cached is not None
    again = list(pairs.chunks())
    monkeypatch.setattr(_pairs, "CACHE_BYTES", 0)
    fresh = list(PairRows(emb, emb, chosen, rejected, chunk_size=64).chunks())
    for a, b, c in zip(first, again, fresh, strict=True):
        assert a[:2] == b[:2] == c[:2]
        assert torch.equal(a[2], b[2]) and torch.equal(a[2], c[2])
    assert torch.equal(torch.cat([d for _, _, d in fresh]), emb[chosen] - emb[rejected])
