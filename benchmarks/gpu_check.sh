#!/usr/bin/env bash
# The prepared GPU check: one command, about 8-11 minutes on one GPU (6-8 without vLLM).
#
#   benchmarks/gpu_check.sh OUT_DIR            # on a GPU machine (needs CUDA)
#   benchmarks/gpu_check.sh OUT_DIR --small    # the same steps end to end on a CPU, tiny model
#
# Steps (each under its own time limit; a failed step is recorded and the rest still run):
#   1. the CUDA-marked tests (`pytest -m cuda`: every CUDA path against the CPU, including
#      tests/rm/test_device_map.py's RM split across GPU and CPU by device_map);
#   2. a randomly initialised Llama-architecture sequence-classification RM of ~1.0B
#      parameters in bf16 (benchmarks/make_llama_rm.py; --small: a tiny one in fp32);
#   3. bench_energy.py --device cuda (grid vs paper mode vs the published per-sample loop);
#   4. bench_extract.py on that RM (texts/s, peak GPU memory);
#   5. bench_server.py on that RM (micro-batching ratio, refinement overhead, peak memory);
#   6. with more than one GPU visible: extraction with 2 processes under `accelerate launch`;
#   7. bench_engines.py on that RM: vLLM against transformers, extraction and GRPO-shaped
#      serving (skipped, with a line in the log, where `vllm` is not importable; --small
#      uses the benchmark's own small Llama RM: vLLM's CPU attention refuses head_dim 16).
# Writes OUT_DIR/summary.json (the numbers) and OUT_DIR/gpu_check.log (everything printed);
# the RM's weights are deleted at the end. Exit status 0 when every step passed.
set -u
if [ $# -lt 1 ]; then
  echo "usage: benchmarks/gpu_check.sh OUT_DIR [--small]" >&2
  exit 2
fi
OUT=$1
SMALL=${2:-}
if [ -n "$SMALL" ] && [ "$SMALL" != "--small" ]; then
  echo "gpu_check.sh: unknown option '$SMALL'; the only option is --small" >&2
  exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOG="$OUT/gpu_check.log"
STEPS="$OUT/steps.tsv"
: > "$LOG"
: > "$STEPS"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT" || exit 2

if [ -n "$SMALL" ]; then
  DEVICE=cpu SIZE=tiny DTYPE=float32
  ENERGY_ARGS=(--tiny --repeats 1)
  EXTRACT_ARGS=(--limit 8 --batch-size 4 --max-length 64 --repeats 1)
  SERVER_ARGS=(--sets short --texts 8 --clients 2 --duration 0.5 --warmup 0.2 --repeats 1)
  ENGINES_ARGS=(--hidden 128 --layers 2 --heads 2 --texts 16 --clients 4 --duration 1 --warmup 0.5 --repeats 1)
  LIMITS=(300 300 300 300 300 300 300)  # a smoke run: generous on a busy machine
else
  DEVICE=cuda SIZE=1b DTYPE=bfloat16
  ENERGY_ARGS=(--repeats 2)
  EXTRACT_ARGS=(--limit 512 --batch-size 16 --max-length 512 --repeats 2)
  SERVER_ARGS=(--clients 32 --duration 10 --warmup 2 --repeats 3 --forward-batch-size 32)
  ENGINES_ARGS=(--rm "$OUT/rm" --dtype "$DTYPE" --texts 512 --clients 32 --duration 10 --warmup 2 --repeats 1 --eager)
  LIMITS=(60 60 50 60 170 45 200)  # with env (30 s): at most 675 s in all
fi

# step NAME SECONDS COMMAND...: run with a time limit, stdout to OUT/NAME.out, stderr to the log
step() {
  local name=$1 limit=$2
  shift 2
  local start end rc
  echo "=== $name (limit ${limit}s): $*" >> "$LOG"
  start=$(date +%s.%N)
  timeout "$limit" "$@" > "$OUT/$name.out" 2>> "$LOG"
  rc=$?
  end=$(date +%s.%N)
  cat "$OUT/$name.out" >> "$LOG"
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(echo "$end - $start" | bc)" "$limit" >> "$STEPS"
  echo "=== $name: exit $rc" >> "$LOG"
}

step env 30 "$PY" -c "
import json, os, torch
cuda = torch.cuda.is_available()
print(json.dumps({'torch': torch.__version__, 'cuda': torch.version.cuda, 'gpus': torch.cuda.device_count(),
    'gpu_names': [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
    'cpu_count': os.cpu_count(), 'device': '$DEVICE'}))"
if [ -n "$SMALL" ]; then
  export EBRM_TEST_DEVICE=cpu  # the same comparisons, CPU against CPU
  step cuda_tests "${LIMITS[0]}" "$PY" -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py -k nce
  unset EBRM_TEST_DEVICE
else
  step cuda_tests "${LIMITS[0]}" "$PY" -m pytest -q -p no:cacheprovider -m cuda tests
fi
DATA=$("$PY" benchmarks/gpu_check_summary.py data-spec "$OUT/data" 2>> "$LOG")
LONG=()
case "$DATA" in *hh-rlhf*) ;; *) LONG=(--long-data "$DATA") ;; esac
step make_rm "${LIMITS[1]}" "$PY" benchmarks/make_llama_rm.py "$OUT/rm" --size "$SIZE" --dtype "$DTYPE" --device "$DEVICE"
step bench_energy "${LIMITS[2]}" "$PY" benchmarks/bench_energy.py --json --device "$DEVICE" "${ENERGY_ARGS[@]}"
step bench_extract "${LIMITS[3]}" "$PY" benchmarks/bench_extract.py --json --rm "$OUT/rm" --data "$DATA" --device "$DEVICE" --dtype "$DTYPE" "${EXTRACT_ARGS[@]}"
step bench_server "${LIMITS[4]}" "$PY" benchmarks/bench_server.py --json --rm "$OUT/rm" --device "$DEVICE" --dtype "$DTYPE" "${SERVER_ARGS[@]}" ${LONG[@]+"${LONG[@]}"}
GPUS=$("$PY" -c "import json; print(json.load(open('$OUT/env.out'))['gpus'])" 2>/dev/null || echo 0)
if [ "${GPUS:-0}" -gt 1 ]; then
  step accelerate_extract "${LIMITS[5]}" "$PY" benchmarks/gpu_check_summary.py accelerate-extract "$OUT/rm" "$OUT/store" --dtype "$DTYPE"
fi
if "$PY" -c "import vllm" > /dev/null 2>&1; then
  export EBRM_ENGINE_CACHE="$OUT/engine-cache"  # the backbone export, deleted below
  step bench_engines "${LIMITS[6]}" "$PY" benchmarks/bench_engines.py --json --device "$DEVICE" "${ENGINES_ARGS[@]}"
else
  echo "=== bench_engines: skipped, vllm is not importable here (pip install vllm to run it)" >> "$LOG"
fi
rm -rf "$OUT/rm" "$OUT/store" "$OUT/data" "$OUT/engine-cache"
"$PY" benchmarks/gpu_check_summary.py summarise "$OUT" > "$OUT/summary.json" 2>> "$LOG"
rc=$?
cat "$OUT/summary.json"
if [ $rc -ne 0 ]; then
  exit $rc
fi
"$PY" -c "import json, sys; sys.exit(0 if json.load(open('$OUT/summary.json'))['ok'] else 1)"
