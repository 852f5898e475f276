#!/usr/bin/env bash
# Loading cost of a Qwen2.5-0.5B-shaped random model (issue #20; docs/PERFORMANCE.md, "Loading a checkpoint").
#   bench/load-memory.sh [dir=/tmp/rlhf-load-bench]
# For float32 and bf16 files, side by side in one run: the loading process's peak RSS (VmHWM) over the file size (its
# rise across the load, and the whole process's), load seconds over the seconds of `cat FILE > /dev/null` (the file in
# the page cache for both; median of REPS runs, default 3) in wall and in CPU seconds (on a shared machine the wall
# clock measures the other processes too), and the whole peak of `rlhf convert` (load, then a streamed
# save) over the file size (/usr/bin/time).
# (`rlhf generate` cannot be the whole-process probe here: a random Qwen-shaped model samples ids beyond the only
# tokenizer we may ship, stories260K's 512 tokens, and decoding them fails.) SKIP_BUILD=1 uses the binaries as built.
# The models are written under /tmp and deleted at the end; they are never committed.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-/tmp/rlhf-load-bench}
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  dotnet build bench/RlhfSharp.Bench -c Release -v q -nologo >/dev/null
  dotnet build src/RlhfSharp.Cli -c Release -v q -nologo >/dev/null
fi
mkdir -p bench/results "$DIR"
# Run copies, so a rebuild during the run cannot swap the binaries under it.
rm -rf "$DIR/bin" "$DIR/bench-bin"; cp -r src/RlhfSharp.Cli/bin/Release/net10.0 "$DIR/bin"; cp -r bench/RlhfSharp.Bench/bin/Release/net10.0 "$DIR/bench-bin"
BENCH="$DIR/bench-bin/rlhf-bench"
RLHF="dotnet $DIR/bin/rlhf.dll"
OUT=bench/results/load-memory.jsonl
: > "$OUT"
for dtype in float32 bf16; do
  model="$DIR/qwen05b-$dtype"
  [ -f "$model/model.safetensors" ] || "$BENCH" load-create out="$model" dtype=$dtype >&2
  # A real tokenizer for the CLI (the built-in one; 512 tokens, inside Qwen's vocabulary).
  [ -d "$DIR/tok" ] || $RLHF convert --model stories260k --out "$DIR/tok" >/dev/null
  cp "$DIR"/tok/tokenizer* "$model/"
  cat "$model/model.safetensors" > /dev/null   # warm the page cache for both sides
  for rep in $(seq 1 "${REPS:-3}"); do
    t0=$(date +%s%N); cat_cpu=$( { /usr/bin/time -f "%U %S" cat "$model/model.safetensors" > /dev/null; } 2>&1 ); t1=$(date +%s%N)
    cat_s=$(awk "BEGIN { printf \"%.4f\", ($t1 - $t0) / 1e9 }")   # /usr/bin/time's 10 ms steps are too coarse for 0.2 s
    cat_cpu=$(echo $cat_cpu | awk '{ printf "%.2f", $1 + $2 }')   # its CPU seconds, user + kernel (10 ms steps)
    # What any loader that copies the file into new memory pays (the kernel zeroes and maps every page of it), which
    # `cat` does not (it reuses one buffer): Python reading the file into a fresh bytearray, CPU seconds.
    fresh_cpu=$(python3 -c "
import os, sys, time
p = sys.argv[1]; n = os.path.getsize(p); t = time.process_time(); b = bytearray(n); v = memoryview(b); off = 0
with open(p, 'rb', buffering=0) as f:
    while off < n: off += f.readinto(v[off:off + (4 << 20)])
print('%.3f' % (time.process_time() - t))" "$model/model.safetensors")
    row=$("$BENCH" load model="$model" dtype=$dtype threads=2)
    conv=$( { /usr/bin/time -f "%M %e" $RLHF convert --model "$model" --out "$DIR/converted" $([ $dtype = bf16 ] && echo --bf16) > /dev/null; } 2>&1 | tail -1 )
    rm -rf "$DIR/converted"
    file_bytes=$(stat -c %s "$model/model.safetensors")
    echo "$row" | python3 -c "import json,sys; r=json.loads(sys.stdin.read()); r.update(rep=$rep, cat_seconds=$cat_s, cat_cpu_seconds=$cat_cpu, fresh_read_cpu_seconds=$fresh_cpu, convert_peak_mb=${conv% *}/1024, convert_seconds=${conv#* }, file_bytes=$file_bytes); print(json.dumps(r))" | tee -a "$OUT"
  done
done
rm -rf "$DIR"
python3 - "$OUT" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| Qwen2.5-0.5B-shaped random model | file | load: peak rise ÷ file | load: whole-process peak ÷ file | load s ÷ `cat` s (wall) | load ÷ `cat` (CPU s) | load ÷ read into new memory (CPU s) | `rlhf convert` whole-process peak ÷ file |")
print("|---|---|---|---|---|---|---|---|")
for d in ("float32", "bfloat16"):
    rs = [r for r in rows if r["dtype"] == d]
    if not rs: continue
    print("| %s file → %s (%d runs) | %.2f GB | %.2f× | %.2f× (%.0f MB) | %.2f× (%.2f s ÷ %.2f s) | %.2f× (%.2f s ÷ %.2f s) | %.2f× (%.2f s ÷ %.2f s) | %.2f× (%.0f MB) |" % (d, d, len(rs), rs[0]["file_bytes"]/1e9,
        st.median(r["peak_rise_over_file"] for r in rs),
        st.median(r["peak_over_file"] for r in rs), st.median(r["peak_after_mb"] for r in rs),
        st.median(r["load_seconds"]/r["cat_seconds"] for r in rs), st.median(r["load_seconds"] for r in rs), st.median(r["cat_seconds"] for r in rs),
        st.median(r["load_cpu_seconds"] for r in rs) / max(st.median(r["cat_cpu_seconds"] for r in rs), 0.01), st.median(r["load_cpu_seconds"] for r in rs), st.median(r["cat_cpu_seconds"] for r in rs),
        st.median(r["load_cpu_seconds"] for r in rs) / st.median(r["fresh_read_cpu_seconds"] for r in rs), st.median(r["load_cpu_seconds"] for r in rs), st.median(r["fresh_read_cpu_seconds"] for r in rs),
        st.median(r["convert_peak_mb"]*1048576/r["file_bytes"] for r in rs), st.median(r["convert_peak_mb"] for r in rs)))
PY
