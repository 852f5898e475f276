#!/usr/bin/env bash
# Per-rank optimizer memory of ZeRO-1 at 1 and 2 ranks (issue 12 part 3; docs/PERFORMANCE.md, "ZeRO-1").
#   bench/zero-memory.sh [rows=1] [seq=64] [steps=3]     (SKIP_BUILD=1 to use the built bench)
# A random SmolLM2-135M-shaped model, a few SFT steps of a tiny batch: plain AdamW in one process, then zero_stage 0 and 1
# under mpirun -np 2. Each rank prints its own line; each run is its own processes (VmHWM only grows).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${SKIP_BUILD:-0}" = 1 ] || dotnet build bench/RlhfSharp.Bench -c Release -v q -nologo >/dev/null
OURS=bench/RlhfSharp.Bench/bin/Release/net10.0/rlhf-bench.dll
MPI="mpirun --oversubscribe --allow-run-as-root"
mkdir -p bench/results
OUT=bench/results/zero-memory.jsonl
: > "$OUT"
dotnet "$OURS" zero-memory zero=0 "$@" | tee -a "$OUT"
for zero in 0 1; do $MPI -np 2 dotnet "$OURS" zero-memory zero=$zero "$@" | tee -a "$OUT"; done
/usr/bin/env python3 - "$OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| launch | zero_stage | rank | AdamW moments held | peak RSS after build | peak RSS after the steps | rise | s/step |")
print("|---|---|---|---|---|---|---|---|")
for i, r in enumerate(rows):
    launch = "one process" if i == 0 else "mpirun -np %d" % r["ranks"]
    print("| %s | %d | %d of %d | %.0f MB | %.0f MB | %.0f MB | %.0f MB | %.2f |" % (launch, r["zero_stage"], r["rank"], r["ranks"], r["optimizer_state_mb"],
          r["built_peak_rss_mb"], r["peak_rss_mb"], r["peak_rss_mb"] - r["built_peak_rss_mb"], r["step_s"]))
PY
