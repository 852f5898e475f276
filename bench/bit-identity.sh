#!/usr/bin/env bash
# Refactoring keeps results bit-identical: runs every method of the pipeline, decoder-only and encoder-decoder (T5), at a
# reduced budget with one build and
# prints the sha256 of every stage's final weights and the summary's numbers, to diff against another build's.
#   bench/bit-identity.sh PATH/rlhf.dll OUT_DIR        (about 10 minutes on 2 idle cores)
#   diff BEFORE/sha.txt AFTER/sha.txt && diff BEFORE/metrics.txt AFTER/metrics.txt
# Copy the build folder first (cp -r, not hard links): a rebuild would overwrite the dlls under the running process.
set -euo pipefail
dll=$1; out=$2
rm -rf "$out"; mkdir -p "$out"
sets=(prompts.train=300 prompts.eval=40
      feedback.demonstration_prompts=64 feedback.ranking_prompts=96 feedback.max_new_tokens=32
      sft.epochs=1 rm.epochs=1 prm.epochs=1
      ppo.steps=4 ppo.rollout_batch_size=16 grpo.steps=4 grpo.prompts_per_step=4
      rs.iterations=1 rs.prompts_per_iteration=32 online_dpo.iterations=1 online_dpo.prompts_per_iteration=32
      ilql.total_steps=20 eval.max_new_tokens=32
      'encoder_decoder={}' encoder_decoder.sft.epochs=1
      'encoder_decoder.algos=["dpo","ipo","orpo","simpo"]')
args=(); for s in "${sets[@]}"; do args+=(--set "$s"); done
dotnet "$dll" pipeline --algo all --out "$out/run" "${args[@]}" > "$out/log.txt" 2>&1
(cd "$out/run" && find . -name '*.safetensors' -not -path '*/state/*' | sort | xargs sha256sum) > "$out/sha.txt"
# The numbers of the summary without the times (wall-clock seconds differ from run to run).
python3 - "$out/run/summary.json" > "$out/metrics.txt" <<'PY'
import json, sys
def walk(node, path):
    if isinstance(node, dict):
        for k, v in sorted(node.items()):
            if 'second' in k or k.endswith('_per_s') or k in ('elapsed', 'time', 'started', 'finished', 'duration'): continue
            walk(v, path + '.' + k)
    elif isinstance(node, list):
        for i, v in enumerate(node): walk(v, f'{path}[{i}]')
    else:
        print(f'{path} = {node}')
walk(json.load(open(sys.argv[1])), '')
PY
wc -l "$out/sha.txt" "$out/metrics.txt"
