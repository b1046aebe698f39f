"""Post-hoc reference rewards with uncertainty, fitted on the energy head's own features.

What a practitioner would put on a frozen RM instead of an energy head (DESIGN §4, "like
for like"): the base RM's sigmoid with its own temperature, a last-layer Laplace posterior
of a Bradley-Terry head (`laplace`) and a bootstrap ensemble of BT heads (`ensemble`). The
last two are linear in the embeddings, fitted in seconds, and offer a mean, a std,
`P(a > b)` and the conservative `mean - k * std`. `ebrm train` stores them in the model
directory (`references.safetensors` + `references.json`, written and read by `ebrm.model`
from the parts `ebrm.references.serialize` makes).

Layering: after `features`/`energy`/`refine` (it uses the temperature fit), before `model`.
"""

from ebrm.references.ensemble import EnsembleReference, bootstrap_counts, fit_ensemble
from ebrm.references.fit import (
    REFERENCE_NAMES,
    ReferenceSet,
    base_p_better,
    fit_references,
    fit_references_on,
)
from ebrm.references.laplace import LaplaceReference, fit_laplace
from ebrm.references.rewards import Reference, ReferenceRewards, reference_rewards

__all__ = [
    "REFERENCE_NAMES",
    "EnsembleReference",
    "LaplaceReference",
    "Reference",
    "ReferenceRewards",
    "ReferenceSet",
    "base_p_better",
    "bootstrap_counts",
    "fit_ensemble",
    "fit_laplace",
    "fit_references",
    "fit_references_on",
    "reference_rewards",
]
