"""The refined-model directory's file and format names (DESIGN §3 [contract]), without torch.

The CLI recognises a refined model by `FORMAT_NAME` before any heavy import;
`ebrm.model.io` writes and reads the same names.
"""

from __future__ import annotations

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "energy_head.safetensors"
CARD_NAME = "README.md"
REFERENCES_META = "references.json"  # the post-hoc references (`ebrm train` stores them)
REFERENCES_TENSORS = "references.safetensors"
FORMAT_NAME = "ebrm-refined-model"  # config.json's "format"
