"""PyTorch eager side of the benchmark: same workloads and arguments as rlhf-bench, same JSON lines.
Run by bench/run.sh; not a product or test dependency."""
import dataclasses
import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

from models import CONFIGS, CausalLM, train_flops_per_token
import ppo_step
import t5


def opt(key, fallback):
    for a in sys.argv[2:]:
        k, v = a.split("=", 1)
        if k == key:
            return type(fallback)(v) if not isinstance(fallback, bool) else v == "1"
    return fallback


def peak(r, n, reps):
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = max(best, 2.0 * n ** 3 * reps / (time.perf_counter() - t))
    r.update(n=n, gflops=best / 1e9)


def bandwidth(r, mb, reps):
    count = mb * 1024 * 1024 // 4
    x, y = torch.ones(count), torch.empty(count)
    x.sum(); y.copy_(x)
    read = copy = 0.0
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            x.sum()
        read = max(read, 4.0 * count * reps / (time.perf_counter() - t))
        t = time.perf_counter()
        for _ in range(reps):
            y.copy_(x)
        copy = max(copy, 8.0 * count * reps / (time.perf_counter() - t))
    r.update(mb=mb, read_gbs=read / 1e9, copy_gbs=copy / 1e9)


def adamw(model, moments="float32"):
    params = list({id(p): p for p in model.parameters()}.values())  # tied weights once
    if moments == "bfloat16":
        return AnyPrecisionAdamW(params, lr=1e-4, weight_decay=0.01), sum(p.numel() for p in params)
    return torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01), sum(p.numel() for p in params)


class AnyPrecisionAdamW(torch.optim.Optimizer):
    """AdamW with bfloat16 moments: the step of torchdistx's AnyPrecisionAdamW (optimizers/anyprecision_optimizer.py, not
    packaged for Debian), without Kahan summation, with each bfloat16 operation written as float32 arithmetic and one
    rounding as CUDA computes it (PyTorch 1.13's CPU kernels refuse bf16.addcmul_(f32, f32)); the same arithmetic as
    tests/RlhfSharp.Tests/fixtures/optimizers/generate_adamw.py, which pins the C# optimizer to it."""

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            (beta1, beta2), lr, eps, wd = group["betas"], group["lr"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                s = self.state[p]
                if not s:
                    s.update(step=torch.tensor(0.0), m=torch.zeros_like(p, dtype=torch.bfloat16), v=torch.zeros_like(p, dtype=torch.bfloat16))
                s["step"] += 1
                if wd:
                    p.mul_(1 - lr * wd)
                m, v, g = s["m"], s["v"], p.grad
                m.copy_(m.float().mul_(beta1))
                m.copy_(m.float().add_(g, alpha=1 - beta1))
                v.copy_(v.float().mul_(beta2))
                v.copy_(v.float().addcmul_(g, g, value=1 - beta2))
                step_size = lr / (1 - beta1 ** s["step"])
                root = (1 - beta2 ** s["step"]) ** 0.5
                denominator = (v.sqrt().float() / root).bfloat16().float().add_(eps).bfloat16()
                p.addcdiv_(m.float(), denominator.float(), value=-step_size)


def train_step(model, optimizer, inp, tgt):
    logits, _ = model(inp)
    loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), tgt.view(-1))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def train(r, name, batch, seq, steps, warmup):
    c = CONFIGS[name]
    model = CausalLM(c).train()
    optimizer, n = adamw(model)
    inp, tgt = torch.randint(c.vocab, (batch, seq)), torch.randint(c.vocab, (batch, seq))
    for _ in range(warmup):
        train_step(model, optimizer, inp, tgt)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        train_step(model, optimizer, inp, tgt)
        times.append(time.perf_counter() - t)
    tps = batch * seq * steps / sum(times)
    fpt = train_flops_per_token(c, seq)
    r.update(model=name, params=n, batch=batch, seq=seq, steps=steps, tokens_per_s=tps,
             median_step_s=sorted(times)[len(times) // 2], flops_per_token=fpt, achieved_gflops=tps * fpt / 1e9)


def real_step(r, name, kind, rows, seq, ckpt, steps, moments="float32", layers=0):
    """One SFT or DPO step of rlhf-bench real-step: float32 AdamW, the policy's per-token log-probs (gathered logit minus
    logsumexp, as TRL/OpenRLHF), SFT mean NLL or DPO's sigmoid loss (beta 0.1) against a frozen float32 reference."""
    c = CONFIGS[name]
    if layers > 0:  # rlhf-bench real-step layers=N: what does not grow with depth (the embedding, the head)
        c = dataclasses.replace(c, layers=layers)
    t = time.perf_counter()
    policy = CausalLM(c).train()
    policy.checkpointing = ckpt
    reference = None
    if kind == "dpo":
        reference = CausalLM(c).eval()
        for p in reference.parameters():
            p.requires_grad_(False)
    build = time.perf_counter() - t
    optimizer, n = adamw(policy, moments)
    forward_rows = 2 * rows if kind == "dpo" else rows
    ids = torch.randint(c.vocab, (forward_rows, seq))

    def logprobs(model):
        logits, _ = model(ids)
        logits = logits[:, :-1].float()
        return logits.gather(-1, ids[:, 1:, None]).squeeze(-1) - logits.logsumexp(-1)

    phase = {}

    def step():
        t = time.perf_counter()
        lp = logprobs(policy)
        if kind == "sft":
            loss = -lp.mean()
        else:
            with torch.no_grad():
                ref = logprobs(reference).sum(1)
            ratio = lp.sum(1) - ref
            loss = -F.logsigmoid(0.1 * (ratio[:rows] - ratio[rows:])).mean()
        optimizer.zero_grad()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        optimizer.step()
        t3 = time.perf_counter()
        phase.update(forward_s=t1 - t, backward_s=t2 - t1, optimizer_s=t3 - t2)  # the last step's split
        return t3 - t

    first = step()
    times = [step() for _ in range(steps)]
    if layers > 0:
        r["layers"] = layers
    r.update(model=name, kind=kind, rows=rows, seq=seq, ckpt=int(ckpt), chunk=0, params=n, moments=moments, build_s=build, first_step_s=first,
             step_s=min(times), step_s_all=times, peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **phase)


# The repository's transformers v4.44 T5 fixtures: t5.check asserts the reference T5 reproduces them before any timing.
T5_FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "RlhfSharp.Tests", "fixtures", "hf-t5")


def train_t5(r, name, batch, seq, steps, warmup):
    """T5's training step: source and target of seq tokens each, loss on the target tokens (HF's labels), AdamW."""
    r["checked_against_transformers"] = t5.check(T5_FIXTURES)
    c = t5.T5_CONFIGS[name]
    model = t5.T5ForConditionalGeneration(c).train()
    optimizer, n = adamw(model)
    src, labels = torch.randint(c.vocab, (batch, seq)), torch.randint(c.vocab, (batch, seq))
    mask = torch.ones(batch, seq, dtype=torch.long)

    def step():
        logits = model(src, mask, model.shift_right(labels))
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-100)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    tps = batch * seq * steps / sum(times)  # target tokens (each with a source token beside it)
    fpt = t5.train_flops_per_token(c, seq)
    r.update(model=name, params=n, batch=batch, seq=seq, steps=steps, tokens_per_s=tps,
             median_step_s=sorted(times)[len(times) // 2], flops_per_token=fpt, achieved_gflops=tps * fpt / 1e9)


def generate_t5(r, name, batch, prompt, new_tokens, warmup):
    """Encoder prompts of `prompt` random tokens, `new_tokens` decoder tokens sampled at T=1 with the cache."""
    r["checked_against_transformers"] = t5.check(T5_FIXTURES)
    c = t5.T5_CONFIGS[name]
    model = t5.T5ForConditionalGeneration(c).eval()
    ids = torch.randint(3, c.vocab, (batch, prompt))
    mask = torch.ones(batch, prompt, dtype=torch.long)
    g = torch.Generator().manual_seed(1)
    for _ in range(warmup):
        t5.sample(model, ids, mask, min(new_tokens, 16), g)
    t = time.perf_counter()
    t5.sample(model, ids, mask, new_tokens, g)
    seconds = time.perf_counter() - t
    r.update(model=name, batch=batch, prompt=prompt, new=new_tokens, cache=True, seconds=seconds,
             tokens_per_s=batch * new_tokens / seconds)


def vm_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024


def rss(r, name, batch, seq, steps):
    c = CONFIGS[name]
    model = CausalLM(c).train()
    optimizer, _ = adamw(model)
    inp, tgt = torch.randint(c.vocab, (batch, seq)), torch.randint(c.vocab, (batch, seq))
    points, t = {}, time.perf_counter()
    for i in range(1, steps + 1):
        train_step(model, optimizer, inp, tgt)
        if i % 50 == 0:
            points[str(i)] = vm_rss_mb()
    r.update(model=name, batch=batch, seq=seq, steps=steps, seconds=time.perf_counter() - t,
             rss_mb=points, rss_growth=points[str(steps)] / points["50"] - 1)


@torch.no_grad()
def sample(model, prompt, new_tokens, cache, generator):
    """Temperature-1 sampling; per step: log-softmax, multinomial, gather, tokens and logprobs to host lists."""
    ids, past = prompt, None
    logits, past = model(prompt, None, last_only=True) if cache else (None, None)
    out = []
    for s in range(new_tokens):
        if not cache:
            logits, _ = model(ids, None, last_only=True)
        scores = logits[:, -1, :]
        logprobs = scores.log_softmax(-1)
        chosen = scores.softmax(-1).multinomial(1, generator=generator)
        lp = logprobs.gather(1, chosen)
        out.append((chosen.squeeze(1).tolist(), lp.squeeze(1).tolist()))
        if cache:
            if s < new_tokens - 1:
                logits, past = model(chosen, past, last_only=True)
        else:
            ids = torch.cat([ids, chosen], dim=1)
    return out


def generate(r, name, batch, prompt, new_tokens, cache, warmup):
    c = CONFIGS[name]
    model = CausalLM(c).eval()
    ids = torch.randint(3, c.vocab, (batch, prompt))
    g = torch.Generator().manual_seed(1)
    for _ in range(warmup):
        sample(model, ids, min(new_tokens, 16), cache, g)
    t = time.perf_counter()
    sample(model, ids, new_tokens, cache, g)
    seconds = time.perf_counter() - t
    r.update(model=name, batch=batch, prompt=prompt, new=new_tokens, cache=cache, seconds=seconds,
             tokens_per_s=batch * new_tokens / seconds)


@torch.no_grad()
def bf16(r, name, batch, seq, iters):
    c = CONFIGS[name]
    model = CausalLM(c).eval()
    ids = torch.randint(c.vocab, (batch, seq))

    def timed():
        model(ids)
        t = time.perf_counter()
        for _ in range(iters):
            model(ids)
        return (time.perf_counter() - t) / iters, model(ids)[0].float()

    fp32, ref = timed()
    model.to(torch.bfloat16)
    low16, low = timed()
    tgt = ids[:, 1:].unsqueeze(-1)
    lp_ref = ref[:, :-1].log_softmax(-1).gather(2, tgt)
    lp_low = low[:, :-1].log_softmax(-1).gather(2, tgt)
    r.update(model=name, batch=batch, seq=seq, iters=iters, fp32_tokens_per_s=batch * seq / fp32,
             bf16_tokens_per_s=batch * seq / low16, speedup=fp32 / low16,
             max_abs_logit_diff=(low - ref).abs().max().item(), mean_abs_logit_diff=(low - ref).abs().mean().item(),
             max_abs_logit=ref.abs().max().item(), max_abs_logprob_diff=(lp_low - lp_ref).abs().max().item())


def exp_underflow(r, rows, vocab, sigmas, reps):
    """rlhf-bench exp-underflow: logsumexp / log_softmax / exp(x - lse) / softmax on N(0, sigma) logits. Debian's torch
    1.13 computes exp with Sleef (no oneMKL VML), so its timings show whether the slow path is LibTorch's alone."""
    z = torch.randn(rows, vocab)
    for sigma in [float(s) for s in sigmas.split(",")]:
        x = z * sigma
        lse = x.logsumexp(-1, keepdim=True)
        key = "sigma_%g" % sigma
        r[key + "_share_below_minus_87"] = (x - lse).lt(-87.3).float().mean().item()

        def timed(f):
            f()  # warm-up
            start = time.perf_counter()
            for _ in range(reps):
                f()
            return (time.perf_counter() - start) / reps
        r[key + "_logsumexp_s"] = timed(lambda: x.logsumexp(-1))
        r[key + "_log_softmax_s"] = timed(lambda: x.log_softmax(-1))
        r[key + "_exp_x_minus_lse_s"] = timed(lambda: (x - lse).exp_())
        r[key + "_softmax_s"] = timed(lambda: x.softmax(-1))
    r.update(rows=rows, vocab=vocab, reps=reps)


def main():
    if len(sys.argv) < 2:
        print("usage: bench.py peak|bandwidth|train|gen|bf16|rss [key=value ...]", file=sys.stderr)
        return 2
    threads = opt("threads", os.cpu_count())
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    w = sys.argv[1]
    r = {"impl": "pytorch", "bench": w, "threads": threads, "torch": torch.__version__}
    model = opt("model", "stories260k")
    if w == "peak":
        peak(r, opt("n", 2048), opt("reps", 10))
    elif w == "bandwidth":
        bandwidth(r, opt("mb", 1024), opt("reps", 10))
    elif w == "train" and model in t5.T5_CONFIGS:
        train_t5(r, model, opt("batch", 4), opt("seq", 128), opt("steps", 2), opt("warmup", 1))
    elif w == "gen" and model in t5.T5_CONFIGS:
        generate_t5(r, model, opt("batch", 4), opt("prompt", 64), opt("new", 32), opt("warmup", 1))
    elif w == "train":
        train(r, model, opt("batch", 32), opt("seq", 256), opt("steps", 20), opt("warmup", 3))
    elif w == "rss":
        rss(r, model, opt("batch", 32), opt("seq", 256), opt("steps", 500))
    elif w == "gen":
        generate(r, model, opt("batch", 32), opt("prompt", 8), opt("new", 256), opt("cache", "1") == "1", opt("warmup", 1))
    elif w == "real-step":
        real_step(r, opt("model", "smollm2"), opt("kind", "sft"), opt("rows", 4), opt("seq", 512), opt("ckpt", "0") == "1", opt("steps", 1), opt("moments", "float32"),
                  opt("layers", 0))
    elif w == "ppo-memory":  # rlhf-bench ppo-memory shared=1: LoRA actor, critic and RM adapters on one base
        ppo_step.ppo_step(r, {"smollm2-135m": "smollm2", "qwen2.5-0.5b": "qwen05b"}.get(model, model), opt("prompts", 8), opt("prompt", 64),
                          opt("new", 64), opt("steps", 1))
    elif w == "exp-underflow":
        exp_underflow(r, opt("rows", 2044), opt("vocab", 151936), opt("sigmas", "0.6,5,30"), opt("reps", 3))
    elif w == "bf16":
        bf16(r, model, opt("batch", 32), opt("seq", 256), opt("iters", 5))
    else:
        print(f"unknown workload {w}", file=sys.stderr)
        return 2
    # The process's peak resident memory (ru_maxrss = VmHWM on Linux), as rlhf-bench reports it.
    r.setdefault("peak_rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(r), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
