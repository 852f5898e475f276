"""oneMKL path off vs on (issue #17): bench/results/mkl.jsonl → the table between the mkl-table markers of
docs/PERFORMANCE.md. Ratios are medians of on/off pairs taken next to each other (ABBA order), stdlib only."""
import json
import statistics
import sys
import time

src, out_md = sys.argv[1:3]
rows = [json.loads(l) for l in open(src) if l.strip()]
ok = [r for r in rows if "error" not in r]


def values(bench, setting, key, **kw):
    return [r[key] for r in ok if r["bench"] == bench and r.get("mkl_setting") == setting and all(r.get(k) == v for k, v in kw.items())]


def pair_ratios(bench, key, **kw):
    """on/off ratios of neighbours: the i-th 'on' over the i-th 'off' (each round runs off, on, on, off)."""
    off, on = values(bench, "0", key, **kw), values(bench, "1", key, **kw)
    return [b / a for a, b in zip(off, on) if a]


def fmt(xs):
    return "–".join(f"{v:,.3g}" if v < 100 else f"{v:,.0f}" for v in (min(xs), max(xs))) if xs else "—"


bw = max(values("bandwidth", "0", "read_gbs") or [float("nan")])
lines = []
first = next(iter(ok), {})
status_on = next((r.get("mkl_path") for r in ok if r.get("mkl_setting") == "1"), "")
lines.append(f"Run {time.strftime('%Y-%m-%d %H:%M')} by `MKL_ONLY=1 bench/run.sh` (ours only, threads = {first.get('threads', '?')}); "
             f"raw lines: `bench/results/mkl.jsonl`. With the path on, the run's log said: “{status_on}”.")
lines.append("")
lines.append("| workload | off (RLHF_MKL_INTEL_PATH=0), range | on (=1), range | on / off, median of neighbour pairs (range) | n |")
lines.append("|---|---|---|---|---|")


def row(label, bench, key, **kw):
    off, on, ratios = values(bench, "0", key, **kw), values(bench, "1", key, **kw), pair_ratios(bench, key, **kw)
    med = f"{statistics.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})" if ratios else "—"
    lines.append(f"| {label} | {fmt(off)} | {fmt(on)} | {med} | {len(ratios)} |")


row("fp32 matmul 2048³, GFLOP/s", "peak", "gflops")
row("train step tokens/s, LLaMA-45M 8×256", "train", "tokens_per_s", model="llama45m")
row("GPT-2 small batch-1 decode, tokens/s", "gen", "tokens_per_s", model="gpt2", batch=1)
gen = [r for r in ok if r["bench"] == "gen" and r.get("model") == "gpt2" and r.get("batch") == 1]
if gen and bw == bw:
    bound = bw * 1e9 / gen[0]["weight_bytes_per_token"]
    for setting, name in (("0", "off"), ("1", "on")):
        best = max(values("gen", setting, "tokens_per_s", model="gpt2", batch=1) or [0])
        lines.append(f"| GPT-2 batch-1 decode, best {name}, % of bandwidth bound ({bound:.1f} tok/s = {bw:.1f} GB/s / "
                     f"{gen[0]['weight_bytes_per_token'] / 1e6:.0f} MB) | | | {100 * best / bound:.0f}% | |")
ni = values("peak", "non-intel", "gflops")
if ni:
    lines.append(f"| fp32 matmul 2048³, GFLOP/s, RLHF_MKL_INTEL_PATH=non-intel (oneMKL's non-Intel kernels forced) | {fmt(ni)} | | | {len(ni)} |")

block = "<!-- mkl-table: written by bench/mkl_report.py -->\n" + "\n".join(lines) + "\n<!-- /mkl-table -->"
md = open(out_md).read()
start, end = md.find("<!-- mkl-table"), md.find("<!-- /mkl-table -->")
if start < 0:
    md += "\n## oneMKL path on AMD: off vs on (issue #17)\n\n" + block + "\n"
else:
    md = md[:start] + block + md[end + len("<!-- /mkl-table -->"):]
open(out_md, "w").write(md)
print(block)
