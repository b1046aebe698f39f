"""The feature store's user-facing names and defaults, importable without torch.

`ebrm extract`'s options and `extract_features`'s keywords take their defaults from here,
and the CLI recognises a store by `FORMAT_NAME` before torch loads.
"""

from __future__ import annotations

from ebrm.rm.names import DTypeName

FORMAT_NAME = "ebrm-feature-store"  # manifest.json's "format" [contract]
MANIFEST_NAME = "manifest.json"

DEFAULT_STORAGE_DTYPE: DTypeName = "float32"  # dtype the embeddings are stored in
DEFAULT_SHARD_SIZE = 4096  # rows per shard file
DEFAULT_CHECKPOINT_SECONDS = 60.0  # an unfinished shard's rows are saved this often
