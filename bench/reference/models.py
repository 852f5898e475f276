"""The benchmark's models in plain PyTorch eager, written the straightforward Hugging Face way
(separate q/k/v projections, rotate_half RoPE, softmax attention, KV cache by concatenation).
Torch 1.13 (Debian 12) has no scaled_dot_product_attention, so attention is matmul + softmax + matmul.
Same shapes as bench/RlhfSharp.Bench/BenchModels.cs; weights are random (speed does not depend on them)."""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint


@dataclass
class Config:
    family: str  # "llama", "gpt2", "neox" (GPT-NeoX/Pythia) or "opt"
    vocab: int
    d: int
    ffn: int
    layers: int
    heads: int
    kv_heads: int
    max_pos: int
    tied: bool
    rotary_pct: float = 1.0  # GPT-NeoX: rotary on the first rotary_pct of each head
    gemma2: bool = False  # Gemma 2: sqrt(d) embedding scale, (1+w) RMSNorm, four norms, gelu-tanh, soft-capping
    head_dim: int = 0     # 0: d // heads
    experts: int = 0      # Mixtral: sparse MoE with this many experts of width ffn, top_k chosen
    top_k: int = 2
    qkv_bias: bool = False  # Qwen2: biases on q/k/v


CONFIGS = {
    # llama2.c stories260K (models/stories260K): shared classifier, grouped-query attention
    "stories260k": Config("llama", 512, 64, 172, 5, 8, 4, 512, True),
    "gpt2": Config("gpt2", 50257, 768, 3072, 12, 12, 12, 1024, True),
    "llama45m": Config("llama", 32000, 512, 1376, 4, 8, 8, 2048, False),
    # issue 18: Gemma-2-shaped and Mixtral-shaped, and the dense model with Mixtral-s's active parameters
    "gemma2s": Config("llama", 32000, 512, 1376, 4, 8, 4, 8192, True, gemma2=True, head_dim=64),
    "mixtral-s": Config("llama", 32000, 512, 688, 4, 8, 4, 8192, False, experts=8, top_k=2),
    "mixtral-dense": Config("llama", 32000, 512, 1376, 4, 8, 4, 8192, False),
    # EleutherAI/pythia-160m: fused per-head QKV, rotary_pct 0.25, parallel residual, untied embed_out
    "pythia160m": Config("neox", 50304, 768, 3072, 12, 12, 12, 2048, False, 0.25),
    # facebook/opt-125m: learned positions offset by 2, pre-LN, ReLU, tied head
    "opt125m": Config("opt", 50272, 768, 3072, 12, 12, 12, 2048, True),
    # issue 12: HuggingFaceTB/SmolLM2-135M and Qwen/Qwen2.5-0.5B config.json shapes (random weights)
    "smollm2": Config("llama", 49152, 576, 1536, 30, 9, 3, 8192, True),
    "qwen05b": Config("llama", 151936, 896, 4864, 24, 14, 2, 32768, True, qkv_bias=True),
}


def head_dim(c: Config) -> int:
    return c.head_dim or c.d // c.heads


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5, plus_one=False):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(d) if plus_one else torch.ones(d))
        self.eps, self.plus_one = eps, plus_one

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        if self.plus_one:  # GemmaRMSNorm
            return (x * (1.0 + self.weight.float())).to(dtype)
        return self.weight * x.to(dtype)


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Attention(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c, self.hd = c, head_dim(c)
        if c.family == "gpt2":
            self.c_attn = nn.Linear(c.d, 3 * c.d)
            self.c_proj = nn.Linear(c.d, c.d)
        elif c.family == "neox":
            self.query_key_value = nn.Linear(c.d, 3 * c.d)
            self.dense = nn.Linear(c.d, c.d)
        elif c.family == "opt":
            self.q_proj, self.k_proj, self.v_proj = nn.Linear(c.d, c.d), nn.Linear(c.d, c.d), nn.Linear(c.d, c.d)
            self.out_proj = nn.Linear(c.d, c.d)
        else:
            self.q_proj = nn.Linear(c.d, c.heads * self.hd, bias=c.qkv_bias)
            self.k_proj = nn.Linear(c.d, c.kv_heads * self.hd, bias=c.qkv_bias)
            self.v_proj = nn.Linear(c.d, c.kv_heads * self.hd, bias=c.qkv_bias)
            self.o_proj = nn.Linear(c.heads * self.hd, c.d, bias=False)

    def forward(self, x, rope, mask, past):
        b, t, _ = x.shape
        c, hd = self.c, self.hd
        if c.family == "gpt2":
            q, k, v = self.c_attn(x).split(c.d, dim=2)
        elif c.family == "neox":  # HF's per-head interleave: (B, T, nh, 3, hd)
            q, k, v = self.query_key_value(x).view(b, t, c.heads, 3, hd).unbind(3)
            q, k, v = q.reshape(b, t, -1), k.reshape(b, t, -1), v.reshape(b, t, -1)
        elif c.family == "opt":
            q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        else:
            q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        q = q.view(b, t, c.heads, hd).transpose(1, 2)  # (B, nh, T, hd)
        k = k.view(b, t, c.kv_heads, hd).transpose(1, 2)
        v = v.view(b, t, c.kv_heads, hd).transpose(1, 2)
        if rope is not None:
            cos, sin = rope  # (1, 1, T, r): r = hd, or GPT-NeoX's rotary prefix
            r = cos.shape[-1]
            q = torch.cat([q[..., :r] * cos + rotate_half(q[..., :r]) * sin, q[..., r:]], dim=-1)
            k = torch.cat([k[..., :r] * cos + rotate_half(k[..., :r]) * sin, k[..., r:]], dim=-1)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        present = (k, v)
        rep = c.heads // c.kv_heads
        if rep > 1:  # HF repeat_kv
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        if c.gemma2:  # query_pre_attn_scalar = head_dim here; attn_logit_softcapping 50
            att = torch.tanh(att / 50.0) * 50.0
        if mask is not None:
            att = att + mask
        att = F.softmax(att.float(), dim=-1).to(q.dtype)
        y = (att @ v).transpose(1, 2).reshape(b, t, c.heads * hd)
        out = {"gpt2": "c_proj", "neox": "dense", "opt": "out_proj"}.get(c.family, "o_proj")
        return getattr(self, out)(y), present


class MLP(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.gpt2 = c.family == "gpt2"
        self.family = c.family
        if c.family == "neox":
            self.dense_h_to_4h, self.dense_4h_to_h = nn.Linear(c.d, c.ffn), nn.Linear(c.ffn, c.d)
        elif c.family == "opt":
            self.fc1, self.fc2 = nn.Linear(c.d, c.ffn), nn.Linear(c.ffn, c.d)
        elif self.gpt2:
            self.c_fc = nn.Linear(c.d, c.ffn)
            self.c_proj = nn.Linear(c.ffn, c.d)
        else:
            self.gate_proj = nn.Linear(c.d, c.ffn, bias=False)
            self.up_proj = nn.Linear(c.d, c.ffn, bias=False)
            self.down_proj = nn.Linear(c.ffn, c.d, bias=False)

        self.act = (lambda h: F.gelu(h, approximate="tanh")) if c.gemma2 else F.silu

    def forward(self, x):
        if self.family == "neox":
            return self.dense_4h_to_h(F.gelu(self.dense_h_to_4h(x)))
        if self.family == "opt":
            return self.fc2(F.relu(self.fc1(x)))
        if self.gpt2:
            return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


class SparseMoe(nn.Module):
    """MixtralSparseMoeBlock as transformers v4.44 runs it: float32 softmax router, top-k renormalised, a loop over
    experts that each take only their tokens (torch.where) and index_add_ back."""
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        self.gate = nn.Linear(c.d, c.experts, bias=False)
        self.experts = nn.ModuleList([MLP(c) for _ in range(c.experts)])

    def forward(self, x):
        b, t, d = x.shape
        h = x.view(-1, d)
        weights = F.softmax(self.gate(h), dim=1, dtype=torch.float)
        weights, chosen = torch.topk(weights, self.c.top_k, dim=-1)
        weights = (weights / weights.sum(dim=-1, keepdim=True)).to(h.dtype)
        out = torch.zeros_like(h)
        mask = F.one_hot(chosen, num_classes=self.c.experts).permute(2, 1, 0)
        for e in range(self.c.experts):
            idx, top = torch.where(mask[e])
            if top.numel() == 0:
                continue
            out.index_add_(0, top, self.experts[e](h[top]) * weights[top, idx, None])
        return out.view(b, t, d)


class Block(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        norm = (lambda: RMSNorm(c.d, plus_one=c.gemma2)) if c.family == "llama" else (lambda: nn.LayerNorm(c.d))
        self.ln_1, self.attn, self.ln_2 = norm(), Attention(c), norm()
        self.mlp = SparseMoe(c) if c.experts else MLP(c)
        self.sandwich = (norm(), norm()) if c.gemma2 else None
        if self.sandwich:
            self.post_attn, self.post_ffw = self.sandwich
        self.parallel = c.family == "neox"

    def forward(self, x, rope, mask, past):
        a, present = self.attn(self.ln_1(x), rope, mask, past)
        if self.sandwich:  # Gemma 2's four norms
            x = x + self.post_attn(a)
            return x + self.post_ffw(self.mlp(self.ln_2(x))), present
        if self.parallel:  # GPT-NeoX use_parallel_residual
            return x + a + self.mlp(self.ln_2(x)), present
        x = x + a
        return x + self.mlp(self.ln_2(x)), present


class CausalLM(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        self.wte = nn.Embedding(c.vocab, c.d)
        self.pos_offset = 2 if c.family == "opt" else 0  # OPT's learned positions skip two rows
        self.wpe = nn.Embedding(c.max_pos + self.pos_offset, c.d) if c.family in ("gpt2", "opt") else None
        self.blocks = nn.ModuleList([Block(c) for _ in range(c.layers)])
        self.ln_f = RMSNorm(c.d, plus_one=c.gemma2) if c.family == "llama" else nn.LayerNorm(c.d)
        self.lm_head = nn.Linear(c.d, c.vocab, bias=False)
        if c.tied:
            self.lm_head.weight = self.wte.weight
        r = int(head_dim(c) * c.rotary_pct)
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, r, 2).float() / r)), persistent=False)

    def forward(self, ids, past=None, last_only=False, hidden=False):
        """ids (B, T); past: list of (k, v) per layer or None. Returns logits (with hidden: the final normed hidden
        states instead, for a score or value head) and the new cache."""
        b, t = ids.shape
        c = self.c
        start = 0 if past is None else past[0][0].shape[2]
        pos = torch.arange(start, start + t)
        x = self.wte(ids)
        if c.gemma2:
            x = x * torch.tensor(c.d ** 0.5, dtype=x.dtype)
        rope = None
        if self.wpe is not None:
            x = x + self.wpe(pos + self.pos_offset)
        else:
            freqs = pos.float()[:, None] * self.inv_freq[None, :]
            emb = torch.cat([freqs, freqs], dim=-1)
            rope = (emb.cos()[None, None].to(x.dtype), emb.sin()[None, None].to(x.dtype))
        mask = None
        if t > 1:  # causal, aligned to the end when there is a cache
            mask = torch.full((t, start + t), float("-inf")).triu(start + 1).to(x.dtype)
        presents = []
        for i, block in enumerate(self.blocks):
            if getattr(self, "checkpointing", False) and self.training and past is None:
                x = torch.utils.checkpoint.checkpoint(lambda h, blk=block: blk(h, rope, mask, None)[0], x)
                continue
            x, present = block(x, rope, mask, None if past is None else past[i])
            presents.append(present)
        x = self.ln_f(x)
        if hidden:
            return x, presents
        if last_only:
            x = x[:, -1:, :]
        logits = self.lm_head(x)
        if c.gemma2:  # final_logit_softcapping 30
            logits = torch.tanh(logits / 30.0) * 30.0
        return logits, presents


def train_flops_per_token(c: Config, seq: int) -> float:
    """Same estimate as BenchModels.TrainFlopsPerToken."""
    hd = head_dim(c)
    attn = c.d * c.heads * hd + 2 * c.d * c.kv_heads * hd + c.heads * hd * c.d
    mlp = (2 if c.family == "gpt2" else 3) * c.d * c.ffn * (c.top_k if c.experts else 1)  # active parameters
    n = c.layers * (attn + mlp) + c.vocab * c.d  # the head (tied or not) is a matmul; the input lookup is not
    if c.family in ("gpt2", "neox", "opt"):
        n += c.layers * (3 * c.d + c.d + c.ffn + c.d)  # biases
    return 6 * n + 12 * c.layers * c.d * seq
