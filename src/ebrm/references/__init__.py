"""Post-hoc reference rewards with uncertainty, fitted on the energy head's own features.

What a practitioner would put on a frozen RM instead of an energy head (DESIGN §4, "like
for like"): a last-layer Laplace posterior of a Bradley-Terry head (`laplace`) and a
bootstrap ensemble of BT heads (`ensemble`). Both are linear in the embeddings, fitted in
seconds, and offer a mean, a std, `P(a > b)` and the conservative `mean - k * std`.

Layering: after `features`/`energy`/`refine` (it uses the temperature fit), before `model`.
"""

from ebrm.references.ensemble import EnsembleReference, bootstrap_counts, fit_ensemble
from ebrm.references.fit import REFERENCE_NAMES, fit_references
from ebrm.references.io import load_references, save_references
from ebrm.references.laplace import LaplaceReference, fit_laplace
from ebrm.references.rewards import Reference, ReferenceRewards, reference_rewards

__all__ = [
    "REFERENCE_NAMES",
    "EnsembleReference",
    "LaplaceReference",
    "Reference",
    "ReferenceRewards",
    "bootstrap_counts",
    "fit_ensemble",
    "fit_laplace",
    "fit_references",
    "load_references",
    "reference_rewards",
    "save_references",
]
