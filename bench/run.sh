#!/usr/bin/env bash
# The benchmark of issue item 7: RlhfSharp against PyTorch eager, side by side, in one run.
#   bench/run.sh            (from the repository root; ~15-20 min on 2 cores)
# Installs Debian's python3-torch and libopenblas0-pthread if missing (reference side only: never a product
# or test dependency), builds bench/RlhfSharp.Bench in Release, runs every workload ours-then-PyTorch, writes
# bench/results/latest.jsonl + latest.json and the table in docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3   # Debian's interpreter: python3-torch is installed for it, not for pyenv/venv shims

if ! dpkg -s python3-torch >/dev/null 2>&1 || ! dpkg -s libopenblas0-pthread >/dev/null 2>&1; then
  SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y python3-torch libopenblas0-pthread
fi

CORES=$(nproc)
# Debian's torch links the generic libblas.so.3; libopenblas0-pthread takes over that alternative.
export OMP_NUM_THREADS=$CORES OPENBLAS_NUM_THREADS=$CORES MKL_NUM_THREADS=$CORES

dotnet build bench/RlhfSharp.Bench -c Release -v q -nologo >/dev/null
OURS=bench/RlhfSharp.Bench/bin/Release/net10.0/rlhf-bench
mkdir -p bench/results

# oneMKL path off vs on (issue #17): ours only, RLHF_MKL_INTEL_PATH=0 and =1 alternately (ABBA), so the machine's
# load falls on both sides alike. On an Intel CPU "on" changes nothing (oneMKL already runs its Intel kernels); the
# non-intel rows force oneMKL's non-Intel kernels there, to show the interposer reaches it.
# MKL_ONLY=1 bench/run.sh runs just this part; MKL_ROUNDS=n sets the rounds (2).
MKL_OUT=bench/results/mkl.jsonl
mkl_run() {
  local mode=$1; shift
  local line
  line=$(RLHF_MKL_INTEL_PATH=$mode "$OURS" "$@" 2>/dev/null) || line="{\"impl\":\"ours\",\"bench\":\"$1\",\"args\":\"$*\",\"error\":\"failed\"}"
  echo "$line" | sed "s/^{/{\"mkl_setting\":\"$mode\",/" | tee -a "$MKL_OUT"
}
if [ "${RESUME:-0}" != 1 ]; then
  : > "$MKL_OUT"
  for round in $(seq "${MKL_ROUNDS:-2}"); do
    for mode in 0 1 1 0; do mkl_run $mode peak n=2048 reps=4; done
    mkl_run non-intel peak n=2048 reps=2
    mkl_run 0 bandwidth mb=512 reps=4
    for mode in 0 1 1 0; do mkl_run $mode train model=llama45m batch=8 seq=256 steps=2 warmup=1; done
    for mode in 0 1 1 0; do mkl_run $mode gen model=gpt2 batch=1 new=16; done
  done
  "$PY" bench/mkl_report.py "$MKL_OUT" docs/PERFORMANCE.md
fi
[ "${MKL_ONLY:-0}" = 1 ] && exit 0
OUT=bench/results/latest.jsonl
[ "${RESUME:-0}" = 1 ] || : > "$OUT"

# run <impl> <args...>: one JSON line into $OUT, or an error line if the process fails.
run() {
  local impl=$1; shift
  local err; err=$(mktemp)
  local line
  if [ "$impl" = ours ]; then line=$("$OURS" "$@" 2>"$err") || line=""
  else line=$(cd bench/reference && "$PY" bench.py "$@" 2>"$err") || line=""; fi
  if [ -z "$line" ]; then
    local msg; msg=$(grep -m1 -iE "exception|error" "$err" | head -c 300 | sed 's/"/\\"/g')
    line="{\"impl\":\"$impl\",\"bench\":\"$1\",\"args\":\"$*\",\"error\":\"${msg:-failed}\"}"
  fi
  echo "$line" | tee -a "$OUT"
  rm -f "$err"
}
both() { run ours "$@"; run pytorch "$@"; }

if [ "${RESUME:-0}" != 1 ]; then
# Machine ceilings, measured twice on each side (the run's peak is the best of all).
both peak n=2048 reps=8
both bandwidth mb=512 reps=8
# (a) training step: forward + backward + AdamW, random tokens.
both train model=stories260k batch=32 seq=256 steps=5 warmup=2
both train model=llama45m batch=8 seq=256 steps=3 warmup=1
both train model=gpt2 batch=4 seq=256 steps=2 warmup=1
# The classic RLHF families (issue 13): Pythia-160M (GPT-NeoX) and OPT-125M shapes, random weights.
both train model=pythia160m batch=4 seq=256 steps=2 warmup=1
both train model=opt125m batch=4 seq=256 steps=2 warmup=1
# The modern families (issue 18): Gemma 2's shape, and Mixtral's next to the dense model with its active parameters.
both train model=gemma2s batch=4 seq=128 steps=2 warmup=1
both train model=mixtral-s batch=4 seq=128 steps=2 warmup=1
both train model=mixtral-dense batch=4 seq=128 steps=2 warmup=1
# (b) KV-cache sampling at temperature 1, prompt 8 tokens, 256 new tokens.
both gen model=stories260k batch=32 new=256
both gen model=stories260k batch=32 new=256 threads=1
both gen model=llama45m batch=8 new=256
fi
# --- part 2 (RESUME=1 starts here)
both gen model=gpt2 batch=4 new=32
both gen model=pythia160m batch=4 new=32
both gen model=opt125m batch=4 new=32
both gen model=gemma2s batch=4 new=32
both gen model=mixtral-s batch=4 new=32
both gen model=mixtral-dense batch=4 new=32
# The encoder-decoder family (issue 19): T5-small's shape, source and target 128 tokens; sampling 32 decoder tokens from
# 64-token encoder prompts. The PyTorch side (bench/reference/t5.py) first reproduces transformers' fixture numbers.
both train model=t5small batch=4 seq=128 steps=2 warmup=1
both gen model=t5small batch=4 prompt=64 new=32
# Batch-1 decoding of GPT-2 small (memory-bandwidth bound).
both gen model=gpt2 batch=1 new=16
# No cache: the full sequence through the model per new token.
both gen model=stories260k batch=32 new=256 cache=0 threads=1
# Frozen models: fp32 vs bf16 forward.
both bf16 model=stories260k batch=32 seq=256 iters=3
both bf16 model=llama45m batch=8 seq=256 iters=1
both bf16 model=gpt2 batch=2 seq=256 iters=1
both peak n=2048 reps=8
# RSS over 500 training steps of stories260K (batch 4 x 256 to keep the run short).
both rss model=stories260k batch=2 seq=128 steps=500
# Serving: rlhf serve in-process, 1 / 4 / 16 concurrent streaming clients (ours only).
for n in 1 4 16; do run ours serve streams=$n requests=4 new=128; done

# Memory soak (issue #7 item 6): 2,000 PPO steps, RSS every 100 (ours only; ~15 min idle). SOAK=1 to include it;
# the numbers go to docs/PERFORMANCE.md by hand ("Memory soak").
if [ "${SOAK:-0}" = 1 ]; then run ours ppo-soak steps=2000 every=100 batch=8 new=32 threads=1; fi

"$PY" bench/report.py "$OUT" bench/results/latest.json docs/PERFORMANCE.md
