"""Peak RSS of one extraction rank against the number of texts.

Each size runs in a fresh interpreter: synthetic pairs (a ~1.5 KB prompt of its own per
pair, two short responses) are built, then `extract_features` runs with a stand-in RM
whose forward pass costs nothing, so what grows with the data is what the rank holds
(the plan, the pairs), not the model. Prints the peak RSS above the RSS with the pairs
loaded, and the slope per extra text:

    PYTHONPATH=src python benchmarks/bench_extract_memory.py --texts 20000 80000 [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = r"""
import json, resource, sys, tempfile
import torch
from ebrm.data.types import Conversation, PreferencePair
from ebrm.features import extract_features

class StandInRM:
    hidden_size = 16
    def format(self, conv):
        return "".join(f"<|{r}|>{c}" for r, c in conv.messages) + f"<|assistant|>{conv.response}"
    def embed_texts(self, texts, *, batch_size=16, progress=False):
        n = torch.tensor([float(len(t)) for t in texts])
        emb = n[:, None].repeat(1, self.hidden_size)
        return emb, emb.sum(1)
    def provenance(self):
        return {"name_or_path": "stand-in", "revision": None, "weights_hash": "0",
                "hidden_size": 16, "dtype": "float32", "max_length": 4096,
                "truncation_side": "left", "model_type": "stand-in"}

pairs_n = int(sys.argv[1]) // 2
filler = "lorem ipsum dolor sit amet " * 55  # ~1.5 KB
pairs = [
    PreferencePair(
        Conversation.from_prompt(f"{i} {filler}", f"the better answer to {i}, " * 4),
        Conversation.from_prompt(f"{i} {filler}", f"a worse answer {i}, " * 3),
        id=str(i),
    )
    for i in range(pairs_n)
]
kb = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
loaded = kb()
with tempfile.TemporaryDirectory() as out:
    store = extract_features(StandInRM(), pairs, out, batch_size=256, shard_size=4096,
                             progress=False, checkpoint_seconds=None)
    rows = store.num_rows
print(json.dumps({"texts": rows, "pairs_mb": loaded / 1024, "extract_mb": (kb() - loaded) / 1024}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, nargs="+", default=[20000, 80000])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory():
        for texts in args.texts:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(texts)], capture_output=True, text=True
            )
            if out.returncode != 0:
                print(out.stderr, file=sys.stderr)
                return 1
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    (a, b) = results[0], results[-1]
    slope = (b["extract_mb"] - a["extract_mb"]) * 2**20 / max(b["texts"] - a["texts"], 1)
    if args.json:
        print(json.dumps({"sizes": results, "bytes_per_text": slope}))
        return 0
    print(f"{'texts':>8} {'pairs loaded MB':>16} {'extraction peak above it MB':>28}")
    for r in results:
        print(f"{r['texts']:>8} {r['pairs_mb']:>16.0f} {r['extract_mb']:>28.0f}")
    print(f"slope: {slope:,.0f} bytes per extra text (peak RSS of one rank, above the pairs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
