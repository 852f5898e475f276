#!/usr/bin/env bash
# Peak memory of DPO: full fine-tuning vs LoRA on the same model (issue #4 item 5; docs/PERFORMANCE.md, "LoRA").
#   bench/lora-memory.sh [model=llama45m] [batch=2] [prompt=64] [completion=64] [steps=3]
# Each configuration runs in its own process, one after the other (VmHWM only grows within a process).
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build bench/RlhfSharp.Bench -c Release -v q -nologo >/dev/null
OURS=bench/RlhfSharp.Bench/bin/Release/net10.0/rlhf-bench
mkdir -p bench/results
OUT=bench/results/lora-memory.jsonl
: > "$OUT"
for lora in 0 1; do "$OURS" dpo-memory lora=$lora "$@" | tee -a "$OUT"; done
/usr/bin/env python3 - "$OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| DPO, %s, batch %d, %d+%d tokens | trainable params | weights in memory | peak RSS (VmHWM) | s/step |" % (rows[0]["model"], rows[0]["batch"], rows[0]["prompt"], rows[0]["completion"]))
print("|---|---|---|---|---|")
for r in rows:
    print("| %s | %s | %.0f MB | %.0f MB | %.1f |" % ("LoRA r 8 (q_proj, v_proj), reference = adapters off" if r["lora"] else "full fine-tuning, reference = second copy",
          f'{r["trainable_params"]:,}', r["weight_mb"], r["peak_rss_mb"], r["s_per_step"]))
full, lora = rows[0]["peak_rss_mb"], rows[1]["peak_rss_mb"]
print("\nLoRA peak / full peak = %.2f (%.0f MB less)" % (lora / full, full - lora))
PY
