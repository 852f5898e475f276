"""Turns bench/results/latest.jsonl into latest.json and the table in docs/PERFORMANCE.md (stdlib only)."""
import json
import platform
import sys
import time

src, out_json, out_md = sys.argv[1:4]
rows = [json.loads(l) for l in open(src) if l.strip()]


def find(impl, bench, **kw):
    for r in rows:
        if r.get("impl") == impl and r.get("bench") == bench and "error" not in r and all(r.get(k) == v for k, v in kw.items()):
            return r
    return None


def err(impl, bench, model):
    for r in rows:
        if r.get("impl") == impl and r.get("bench") == bench and "error" in r and f"model={model}" in r.get("args", ""):
            return r["error"]
    return None


peak = max([r["gflops"] for r in rows if r.get("bench") == "peak" and "gflops" in r] or [float("nan")])
bw = max([r["read_gbs"] for r in rows if r.get("bench") == "bandwidth" and "read_gbs" in r] or [float("nan")])
table = []  # workload, ours, pytorch, ratio, target, met


def fmt(x, unit=""):
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    return f"{x:,.0f}{unit}" if abs(x) >= 100 else f"{x:.3g}{unit}"


def add(workload, ours, torch_, target, met, ratio=None):
    if ratio is None and isinstance(ours, (int, float)) and isinstance(torch_, (int, float)) and torch_:
        ratio = ours / torch_
    table.append([workload, fmt(ours), fmt(torch_), f"{ratio:.2f}×" if ratio else "—", target,
                  "—" if met is None else ("yes" if met else "**no**")])


for impl in ("ours", "pytorch"):
    pass
p_o = max([r["gflops"] for r in rows if r.get("bench") == "peak" and r.get("impl") == "ours"] or [None], key=lambda v: v or 0)
p_t = max([r["gflops"] for r in rows if r.get("bench") == "peak" and r.get("impl") == "pytorch"] or [None], key=lambda v: v or 0)
add("fp32 matmul 2048³, GFLOP/s (peak = best of both)", p_o, p_t, "measured", None)
b_o, b_t = find("ours", "bandwidth"), find("pytorch", "bandwidth")
add("memory read bandwidth (sum over 512 MB), GB/s", b_o and b_o["read_gbs"], b_t and b_t["read_gbs"], "measured", None)

shapes = {"stories260k": "stories260K 32×256", "llama45m": "LLaMA-45M 8×256", "gpt2": "GPT-2 small 4×256"}
for m, label in shapes.items():
    o, t = find("ours", "train", model=m), find("pytorch", "train", model=m)
    ratio = o and t and o["tokens_per_s"] / t["tokens_per_s"]
    note = f" ({o['steps']} timed steps)" if o else ""
    add(f"train step tokens/s, {label}{note}", (o and o["tokens_per_s"]) or err("ours", "train", m),
        (t and t["tokens_per_s"]) or err("pytorch", "train", m), "≥1.2× PyTorch", ratio and ratio >= 1.2)
for m, label in shapes.items():
    o, t = find("ours", "train", model=m), find("pytorch", "train", model=m)
    # One FLOP count for both sides (ours), over the run's peak.
    fpt = (o or t or {}).get("flops_per_token")
    mo = o and fpt * o["tokens_per_s"] / 1e9 / peak
    mt = t and fpt * t["tokens_per_s"] / 1e9 / peak
    add(f"train MFU, {label} (6N+12LdT FLOPs/token over peak {peak:.0f} GFLOP/s)", mo and f"{100*mo:.1f}%",
        mt and f"{100*mt:.1f}%", "≥60% at 45M" if m == "llama45m" else "info",
        (mo >= 0.6) if (m == "llama45m" and mo) else None, ratio=(mo / mt) if mo and mt else None)

gens = [("stories260k", 32, 256, None, "stories260K 32×256"), ("stories260k", 32, 256, 1, "stories260K 32×256, 1 thread"),
        ("llama45m", 8, 256, None, "LLaMA-45M 8×256"), ("gpt2", 4, 32, None, "GPT-2 small 4×32 new (cut from 256 for time)")]
for m, b, n, th, label in gens:
    kw = dict(model=m, batch=b, new=n, cache=True)
    if th:
        kw["threads"] = th
    o, t = find("ours", "gen", **kw), find("pytorch", "gen", **kw)
    if th is None:  # the default-threads row, not the 1-thread one
        o = next((r for r in rows if r.get("impl") == "ours" and r.get("bench") == "gen" and "error" not in r and all(r.get(k) == v for k, v in kw.items()) and r.get("threads") != 1), o)
        t = next((r for r in rows if r.get("impl") == "pytorch" and r.get("bench") == "gen" and "error" not in r and all(r.get(k) == v for k, v in kw.items()) and r.get("threads") != 1), t)
    ratio = o and t and o["tokens_per_s"] / t["tokens_per_s"]
    add(f"KV-cache sampling tokens/s, {label} (prompt 8, T=1)", o and o["tokens_per_s"], t and t["tokens_per_s"],
        "≥1.5× PyTorch", ratio and ratio >= 1.5)

o1, t1 = find("ours", "gen", model="gpt2", batch=1), find("pytorch", "gen", model="gpt2", batch=1)
if o1:
    bound = bw * 1e9 / o1["weight_bytes_per_token"]
    fo, ft = o1["tokens_per_s"] / bound, t1 and t1["tokens_per_s"] / bound
    add(f"GPT-2 small batch-1 decode, % of bandwidth bound ({bound:.1f} tok/s = {bw:.1f} GB/s / {o1['weight_bytes_per_token']/1e6:.0f} MB)",
        f"{100*fo:.0f}% ({o1['tokens_per_s']:.1f} tok/s)", ft and f"{100*ft:.0f}% ({t1['tokens_per_s']:.1f} tok/s)", "≥50%", fo >= 0.5,
        ratio=(fo / ft) if ft else None)

for impl_rows in [None]:
    oc = find("ours", "gen", model="stories260k", cache=True, threads=1)
    on = find("ours", "gen", model="stories260k", cache=False)
    tc = find("pytorch", "gen", model="stories260k", cache=True, threads=1)
    tn = find("pytorch", "gen", model="stories260k", cache=False)
    so = oc and on and oc["tokens_per_s"] / on["tokens_per_s"]
    st = tc and tn and tc["tokens_per_s"] / tn["tokens_per_s"]
    add("KV cache speed-up over no cache, stories260K 32×256 new, 1 thread", so and f"{so:.1f}×", st and f"{st:.1f}×", "≥5×", so and so >= 5,
        ratio=(so / st) if so and st else None)
    add("no-cache sampling tokens/s, stories260K 32×256, 1 thread", on and on["tokens_per_s"], tn and tn["tokens_per_s"], "info", None)

for m, label in shapes.items():
    o, t = find("ours", "bf16", model=m), find("pytorch", "bf16", model=m)
    eo = err("ours", "bf16", m)
    add(f"bf16 / fp32 frozen forward speed, {label}".replace("4×256", "2×256"), (o and f"{o['speedup']:.2f}×") or (eo and f"fails: {eo[:90]}"),
        (t and f"{t['speedup']:.2f}×") or err("pytorch", "bf16", m), "≥2×", (o["speedup"] >= 2) if o else False,
        ratio=(o["bf16_tokens_per_s"] / t["bf16_tokens_per_s"]) if o and t else None)
    add(f"bf16 max abs Δlogit (max abs logit; max abs Δlogprob), {label}",
        o and f"{o['max_abs_logit_diff']:.3g} ({o['max_abs_logit']:.3g}; {o['max_abs_logprob_diff']:.3g})",
        t and f"{t['max_abs_logit_diff']:.3g} ({t['max_abs_logit']:.3g}; {t['max_abs_logprob_diff']:.3g})",
        "≤1e-2", (o["max_abs_logit_diff"] <= 1e-2) if o else False, ratio=None)

ro, rt = find("ours", "rss"), find("pytorch", "rss")
def rss_text(r):
    return r and f"{r['rss_mb']['50']:.0f} → {r['rss_mb'][str(r['steps'])]:.0f} MB ({100*r['rss_growth']:+.1f}%)"
add("RSS, training step 50 → 500, stories260K 2×128", rss_text(ro), rss_text(rt), "±10%", ro and abs(ro["rss_growth"]) <= 0.10, ratio=None)

# Serving (ours only: `rlhf serve` in-process, streaming completions over loopback HTTP).
serve = {n: find("ours", "serve", streams=n) for n in (1, 4, 16)}
if all(serve.values()):
    tps = {n: serve[n]["tokens_per_s"] for n in serve}
    add("served tokens/s, stories260K, 1 / 4 / 16 concurrent streams (128 new tokens, 4 requests per stream)",
        " / ".join(f"{tps[n]:,.0f}" for n in (1, 4, 16)), "—", "16 streams ≥4× 1 stream", tps[16] >= 4 * tps[1], ratio=tps[16] / tps[1])
    add("time to first token p50 / p95, ms, at 1 / 4 / 16 streams",
        " · ".join(f"{serve[n]['ttft_p50_ms']:.0f}/{serve[n]['ttft_p95_ms']:.0f}" for n in (1, 4, 16)), "—", "info", None, ratio=None)

json.dump({"date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.platform(), "peak_gflops": peak,
           "read_gbs": bw, "results": rows, "table": table}, open(out_json, "w"), indent=1)

torch_version = next((r.get("torch") for r in rows if r.get("torch")), "?")
md = [
    "# Performance",
    "",
    "Produced by `bench/run.sh` (issue item 7). Ours = RlhfSharp on TorchSharp-cpu 0.107 (LibTorch 2.10);",
    f"PyTorch = eager torch {torch_version} from Debian (`python3-torch`, OpenBLAS pthread), the same shapes in",
    "`bench/reference/models.py`. Both sides run alternately in the same run with threads = cores. Absolute",
    "numbers vary from run to run: read the ratios. Raw results:",
    "`bench/results/latest.json`.",
    "",
    f"Run: {time.strftime('%Y-%m-%d %H:%M')}, {platform.platform()}, peak {peak:.0f} GFLOP/s, read bandwidth {bw:.1f} GB/s.",
    "",
    "| workload | ours | PyTorch | ratio | target | met? |",
    "|---|---|---|---|---|---|",
]
md += ["| " + " | ".join(str(c) for c in row) + " |" for row in table]
md.append("")
block = "<!-- table: written by bench/report.py -->\n" + "\n".join(md[2:]) + "\n<!-- /table -->"
try:
    old = open(out_md).read()
except FileNotFoundError:
    old = "# Performance\n\n<!-- table: written by bench/report.py -->\n<!-- /table -->\n"
start, end = old.find("<!-- table"), old.find("<!-- /table -->")
if start < 0 or end < 0:
    old, start, end = old + "\n<!-- table: written by bench/report.py -->\n<!-- /table -->\n", None, None
    start, end = old.find("<!-- table"), old.find("<!-- /table -->")
open(out_md, "w").write(old[:start] + block + old[end + len("<!-- /table -->"):])
print("\n".join(md))
