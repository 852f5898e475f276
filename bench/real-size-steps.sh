#!/usr/bin/env bash
# Issue 12 part 3: the SFT, DPO and PPO steps at real model sizes, ours against PyTorch (bench/reference), pair by pair
# in one run, each configuration in its own process (VmHWM only grows within one); docs/PERFORMANCE.md, "Real-size steps".
#   bench/real-size-steps.sh [ROW ...]      ROW: smollm2-sft smollm2-sft-nockpt smollm2-dpo smollm2-dpo-nockpt smollm2-ppo
#                                                qwen-sft qwen-dpo qwen-dpo-full qwen-ppo qwen-ppo-full   (default: all)
# About 75 minutes on 2 idle cores. Time it on an idle machine: other processes move a step's time by up to 2x (and with
# the kernel's autogroup on, `nice` does not shield it from another shell's work).
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build bench/RlhfSharp.Bench -c Release -v q -nologo >/dev/null
# A copy, so a rebuild during the run cannot replace the dlls under a running benchmark.
BIN=$(mktemp -d); trap 'rm -rf "$BIN"' EXIT
cp -r bench/RlhfSharp.Bench/bin/Release/net10.0/. "$BIN"
mkdir -p bench/results
OUT=bench/results/real-size-steps.jsonl
: > "$OUT"
# name | the workload's arguments on both sides | ours only: product options (shared base, chunked log-probs) PyTorch's reference lacks
declare -A ARGS=(
  [smollm2-sft]="real-step model=smollm2 kind=sft rows=4 seq=512 ckpt=1 steps=1|"
  [smollm2-sft-nockpt]="real-step model=smollm2 kind=sft rows=4 seq=512 ckpt=0 steps=1|"
  [smollm2-dpo]="real-step model=smollm2 kind=dpo rows=2 seq=512 ckpt=1 steps=1|"
  [smollm2-dpo-nockpt]="real-step model=smollm2 kind=dpo rows=2 seq=512 ckpt=0 steps=1|"
  [smollm2-ppo]="ppo-memory model=smollm2-135m steps=1|shared=1"
  [qwen-sft]="real-step model=qwen05b kind=sft rows=4 seq=512 ckpt=1 moments=bfloat16 steps=1|chunk=512"
  [qwen-dpo]="real-step model=qwen05b kind=dpo rows=2 seq=512 ckpt=1 moments=bfloat16 steps=1|chunk=512"
  [qwen-dpo-full]="real-step model=qwen05b kind=dpo rows=2 seq=512 ckpt=1 moments=bfloat16 steps=1|chunk=0"
  [qwen-ppo]="ppo-memory model=qwen2.5-0.5b steps=1|shared=1 chunk=512"
  [qwen-ppo-full]="ppo-memory model=qwen2.5-0.5b steps=1|shared=1 chunk=0"
)
ROWS=("$@"); [ ${#ROWS[@]} -gt 0 ] || ROWS=(smollm2-sft smollm2-sft-nockpt smollm2-dpo smollm2-dpo-nockpt smollm2-ppo qwen-sft qwen-dpo qwen-dpo-full qwen-ppo qwen-ppo-full)
for row in "${ROWS[@]}"; do
  spec=${ARGS[$row]:?unknown row $row}; both=${spec%%|*}; ours=${spec#*|}
  # PyTorch first, then ours, each line tagged with the row and the load average it started at.
  load=$(cut -d' ' -f1 /proc/loadavg)
  (cd bench/reference && /usr/bin/python3 bench.py $both threads=$(nproc)) | grep '^{' | python3 -c "import json,sys; r=json.loads(sys.stdin.read()); r.update(row='$row', load=$load); print(json.dumps(r))" | tee -a "$OUT"
  load=$(cut -d' ' -f1 /proc/loadavg)
  "$BIN/rlhf-bench" $both $ours threads=$(nproc) | grep '^{' | python3 -c "import json,sys; r=json.loads(sys.stdin.read()); r.update(row='$row', load=$load); print(json.dumps(r))" | tee -a "$OUT"
done
python3 - "$OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def secs(r): return r.get("step_s") or r.get("s_per_step")
print("| row | ours s/step | PyTorch s/step | speed ours / PyTorch | ours peak RSS | PyTorch peak RSS | load at start (PyTorch, ours) |")
print("|---|---|---|---|---|---|---|")
for pt, us in zip(rows[0::2], rows[1::2]):
    print("| %s | %.1f | %.1f | %.2fx | %.0f MiB | %.0f MiB | %s, %s |" % (us["row"], secs(us), secs(pt), secs(pt) / secs(us), us["peak_rss_mb"], pt["peak_rss_mb"], pt["load"], us["load"]))
PY
