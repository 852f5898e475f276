"""The benchmark's encoder-decoder model in plain PyTorch eager: T5ForConditionalGeneration written the straightforward
transformers v4.44 way (modeling_t5.py), because Debian's python has torch but no transformers.

- separate q/k/v/o projections without bias, no 1/sqrt(d_kv) scaling, a relative position bias computed in the first
  layer of each stack and added in every layer (mask folded in), float32 softmax;
- T5LayerNorm (RMS, no bias), relu or gated-gelu feed-forward, final norm per stack;
- a tied head scales the decoder output by d_model ** -0.5 first; an untied lm_head does not;
- generation as HF's: the encoder once, decoder self-attention keys/values concatenated step by step, cross-attention
  keys/values computed on the first step and reused.
Parameter names are HF's, so a transformers folder loads into it. `check` loads the repository's transformers fixtures
(tests/RlhfSharp.Tests/fixtures/hf-t5/<case>: v4.44's numbers) and asserts this model reproduces them before any timing:
encoder output, logits (1e-5 + 1e-5·|b|) and the greedy tokens with the cache. The same fixtures pin our T5
(tests/RlhfSharp.Tests/Models/T5ParityTests.cs), so both sides of the benchmark compute the same function.
Weights for the benchmark itself are random: speed does not depend on them."""
import json
import math
import os
import struct
import sys
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class T5Config:
    vocab: int = 32128
    d_model: int = 512
    d_kv: int = 64
    d_ff: int = 2048
    layers: int = 6
    decoder_layers: int = 6
    heads: int = 8
    buckets: int = 32
    max_distance: int = 128
    eps: float = 1e-6
    gated: bool = False  # gated-gelu (v1.1 / FLAN-T5) instead of relu
    tied: bool = True
    pad: int = 0
    eos: int = 1
    start: int = 0


# T5-small (google-t5/t5-small config.json, configuration_t5.py defaults): d_model 512, 6+6 layers, 8 heads of 64,
# d_ff 2048, relu, tied head, vocab 32128. Same shape as bench/RlhfSharp.Bench/BenchModels.cs T5Small.
T5_CONFIGS = {"t5small": T5Config()}


def config_from_hf(cfg):
    return T5Config(vocab=cfg["vocab_size"], d_model=cfg["d_model"], d_kv=cfg["d_kv"], d_ff=cfg["d_ff"],
                    layers=cfg["num_layers"], decoder_layers=cfg.get("num_decoder_layers") or cfg["num_layers"],
                    heads=cfg["num_heads"], buckets=cfg["relative_attention_num_buckets"],
                    max_distance=cfg["relative_attention_max_distance"], eps=cfg["layer_norm_epsilon"],
                    gated=cfg["feed_forward_proj"] == "gated-gelu", tied=cfg.get("tie_word_embeddings", True),
                    pad=cfg["pad_token_id"], eos=cfg["eos_token_id"], start=cfg["decoder_start_token_id"])


class T5LayerNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        variance = x.float().pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.eps)).to(self.weight.dtype)


def relative_bucket(rel, bidirectional, num_buckets, max_distance):
    """T5Attention._relative_position_bucket."""
    ret = torch.zeros_like(rel)
    if bidirectional:
        num_buckets //= 2
        ret += (rel > 0).long() * num_buckets
        rel = rel.abs()
    else:
        rel = -torch.min(rel, torch.zeros_like(rel))
    max_exact = num_buckets // 2
    small = rel < max_exact
    large = max_exact + (torch.log(rel.float() / max_exact) / math.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).long()
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return ret + torch.where(small, rel, large)


class T5Attention(nn.Module):
    def __init__(self, c: T5Config, is_decoder: bool, relative_bias: bool):
        super().__init__()
        self.c, self.is_decoder = c, is_decoder
        inner = c.heads * c.d_kv
        self.q = nn.Linear(c.d_model, inner, bias=False)
        self.k = nn.Linear(c.d_model, inner, bias=False)
        self.v = nn.Linear(c.d_model, inner, bias=False)
        self.o = nn.Linear(inner, c.d_model, bias=False)
        if relative_bias:
            self.relative_attention_bias = nn.Embedding(c.buckets, c.heads)

    def compute_bias(self, q_len, k_len):
        rel = torch.arange(k_len)[None, :] - torch.arange(q_len)[:, None]
        b = relative_bucket(rel, not self.is_decoder, self.c.buckets, self.c.max_distance)
        return self.relative_attention_bias(b).permute(2, 0, 1).unsqueeze(0)  # (1, H, q, k)

    def shape(self, x):
        return x.view(x.shape[0], -1, self.c.heads, self.c.d_kv).transpose(1, 2)

    def forward(self, x, bias, kv=None, past=None):
        """x (B, T, d). Self-attention when kv is None (past: this layer's (k, v) so far, concatenated to);
        cross-attention over kv otherwise (past: the encoder's (k, v), computed once). Returns output and (k, v)."""
        q = self.shape(self.q(x))
        if kv is None:
            k, v = self.shape(self.k(x)), self.shape(self.v(x))
            if past is not None:
                k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        elif past is not None:
            k, v = past
        else:
            k, v = self.shape(self.k(kv)), self.shape(self.v(kv))
        scores = q @ k.transpose(3, 2) + bias  # T5: no 1/sqrt(d_kv)
        weights = F.softmax(scores.float(), dim=-1).type_as(scores)
        y = (weights @ v).transpose(1, 2).reshape(x.shape[0], -1, self.c.heads * self.c.d_kv)
        return self.o(y), (k, v)


class T5DenseActDense(nn.Module):
    def __init__(self, c: T5Config):
        super().__init__()
        self.wi = nn.Linear(c.d_model, c.d_ff, bias=False)
        self.wo = nn.Linear(c.d_ff, c.d_model, bias=False)

    def forward(self, x):
        return self.wo(F.relu(self.wi(x)))


class T5DenseGatedActDense(nn.Module):
    def __init__(self, c: T5Config):
        super().__init__()
        self.wi_0 = nn.Linear(c.d_model, c.d_ff, bias=False)
        self.wi_1 = nn.Linear(c.d_model, c.d_ff, bias=False)
        self.wo = nn.Linear(c.d_ff, c.d_model, bias=False)

    def forward(self, x):
        return self.wo(F.gelu(self.wi_0(x), approximate="tanh") * self.wi_1(x))  # gelu_new


class T5LayerSelfAttention(nn.Module):
    def __init__(self, c, is_decoder, relative_bias):
        super().__init__()
        self.SelfAttention = T5Attention(c, is_decoder, relative_bias)
        self.layer_norm = T5LayerNorm(c.d_model, c.eps)


class T5LayerCrossAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.EncDecAttention = T5Attention(c, True, False)
        self.layer_norm = T5LayerNorm(c.d_model, c.eps)


class T5LayerFF(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.DenseReluDense = T5DenseGatedActDense(c) if c.gated else T5DenseActDense(c)
        self.layer_norm = T5LayerNorm(c.d_model, c.eps)

    def forward(self, x):
        return x + self.DenseReluDense(self.layer_norm(x))


class T5Block(nn.Module):
    def __init__(self, c, is_decoder, relative_bias):
        super().__init__()
        self.is_decoder = is_decoder
        layers = [T5LayerSelfAttention(c, is_decoder, relative_bias)]
        if is_decoder:
            layers.append(T5LayerCrossAttention(c))
        layers.append(T5LayerFF(c))
        self.layer = nn.ModuleList(layers)

    def forward(self, x, self_bias, enc=None, cross_bias=None, past=None):
        sa = self.layer[0]
        a, self_kv = sa.SelfAttention(sa.layer_norm(x), self_bias, past=None if past is None else past[0])
        x = x + a
        cross_kv = None
        if self.is_decoder:
            ca = self.layer[1]
            a, cross_kv = ca.EncDecAttention(ca.layer_norm(x), cross_bias, kv=enc, past=None if past is None else past[1])
            x = x + a
        return self.layer[-1](x), (self_kv, cross_kv)


class T5Stack(nn.Module):
    def __init__(self, c: T5Config, is_decoder: bool):
        super().__init__()
        self.c, self.is_decoder = c, is_decoder
        n = c.decoder_layers if is_decoder else c.layers
        self.block = nn.ModuleList([T5Block(c, is_decoder, i == 0) for i in range(n)])
        self.final_layer_norm = T5LayerNorm(c.d_model, c.eps)

    def forward(self, h, mask, enc=None, cross_mask=None, past=None):
        """mask: additive (B or 1, 1, q, k) over this stack's keys; past: per layer ((k, v), (k, v)) or None."""
        q_len = h.shape[1]
        start = 0 if past is None else past[0][0][0].shape[2]
        # HF computes the bias over the whole sequence and keeps the last q_len rows when there is a cache.
        bias = self.block[0].layer[0].SelfAttention.compute_bias(start + q_len, start + q_len)[:, :, -q_len:, :] + mask
        presents = []
        for i, block in enumerate(self.block):
            h, present = block(h, bias, enc, cross_mask, None if past is None else past[i])
            presents.append(present)
        return self.final_layer_norm(h), presents


def padding_mask(attention_mask, dtype):
    """(1 - mask) * finfo.min over keys, (B, 1, 1, Tk): modeling_utils invert_attention_mask."""
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class T5ForConditionalGeneration(nn.Module):
    def __init__(self, c: T5Config):
        super().__init__()
        self.c = c
        self.shared = nn.Embedding(c.vocab, c.d_model)
        self.encoder = T5Stack(c, False)
        self.decoder = T5Stack(c, True)
        self.lm_head = None if c.tied else nn.Linear(c.d_model, c.vocab, bias=False)

    def encode(self, ids, attention_mask):
        return self.encoder(self.shared(ids), padding_mask(attention_mask, self.shared.weight.dtype))[0]

    def decode(self, dec_ids, enc, attention_mask, dec_mask=None, past=None):
        """Decoder output after its final norm, and the new cache. dec_mask: 0/1 over the decoder tokens (no cache)."""
        h = self.shared(dec_ids)
        t = dec_ids.shape[1]
        start = 0 if past is None else past[0][0][0].shape[2]
        allowed = torch.ones(t, start + t, dtype=torch.bool).tril(start)[None, None]
        if dec_mask is not None:
            allowed = allowed & dec_mask.bool()[:, None, None, :]
        mask = (~allowed).to(h.dtype) * torch.finfo(h.dtype).min
        return self.decoder(h, mask, enc, padding_mask(attention_mask, h.dtype), past)

    def head(self, h):
        if self.lm_head is not None:
            return self.lm_head(h)
        return F.linear(h * self.c.d_model ** -0.5, self.shared.weight)

    def forward(self, ids, attention_mask, dec_ids, dec_mask=None):
        return self.head(self.decode(dec_ids, self.encode(ids, attention_mask), attention_mask, dec_mask)[0])

    def shift_right(self, labels):
        """HF _shift_right: the decoder start token, then the labels without their last (-100 -> pad)."""
        out = torch.cat([torch.full((labels.shape[0], 1), self.c.start, dtype=labels.dtype), labels[:, :-1]], 1)
        return out.masked_fill(out == -100, self.c.pad)


def train_flops_per_token(c: T5Config, seq: int) -> float:
    """Same estimate as BenchModels.T5TrainFlopsPerToken: per target token (with one source token beside it), 6 per
    weight in a matmul (encoder, decoder, the head; not the input lookup or the bias tables) plus attention's
    12·d_inner·T per attention (the encoder's self, the decoder's self and cross)."""
    inner = c.heads * c.d_kv
    attn = 4 * c.d_model * inner
    ff = (3 if c.gated else 2) * c.d_model * c.d_ff
    n = c.layers * (attn + ff) + c.decoder_layers * (2 * attn + ff) + c.vocab * c.d_model
    return 6 * n + 12 * inner * seq * (c.layers + 2 * c.decoder_layers)


@torch.no_grad()
def sample(model, ids, attention_mask, new_tokens, generator, greedy=False, step_logits=None):
    """Temperature-1 sampling (or greedy): the encoder once, then one decoder token per step with the cache; per step
    log-softmax, multinomial, gather, tokens and log-probs to host lists (as bench.py's decoder-only sample)."""
    enc = model.encode(ids, attention_mask)
    dec = torch.full((ids.shape[0], 1), model.c.start, dtype=torch.long)
    past, out = None, []
    for _ in range(new_tokens):
        h, past = model.decode(dec, enc, attention_mask, past=past)
        scores = model.head(h[:, -1, :])
        if step_logits is not None:
            step_logits.append(scores)
        logprobs = scores.log_softmax(-1)
        chosen = scores.argmax(-1, keepdim=True) if greedy else scores.softmax(-1).multinomial(1, generator=generator)
        lp = logprobs.gather(1, chosen)
        out.append((chosen.squeeze(1).tolist(), lp.squeeze(1).tolist()))
        dec = chosen
    return out


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    return {k: torch.frombuffer(bytearray(data[e["data_offsets"][0]:e["data_offsets"][1]]), dtype=torch.float32)
            .reshape(e["shape"]).clone() for k, e in header.items() if k != "__metadata__"}


def close(got, want, mask=None):
    err = (got - want).abs() - (1e-5 + 1e-5 * want.abs())
    return bool((err[mask] if mask is not None else err).le(0).all()), float((got - want).abs().max())


def check(fixtures):
    """Loads each transformers fixture case and asserts this model reproduces v4.44's numbers; raises otherwise."""
    cases = sorted(d for d in os.listdir(fixtures) if os.path.isfile(os.path.join(fixtures, d, "expected.json")))
    assert cases, f"no fixture cases under {fixtures}"
    for case in cases:
        folder = os.path.join(fixtures, case)
        model = T5ForConditionalGeneration(config_from_hf(json.load(open(os.path.join(folder, "config.json"))))).eval()
        missing, unexpected = model.load_state_dict(read_safetensors(os.path.join(folder, "model.safetensors")), strict=False)
        assert not missing and not unexpected, (case, missing, unexpected)
        e = json.load(open(os.path.join(folder, "expected.json")))
        f = e["forward"][0]
        t = lambda k: torch.tensor(f[k])
        tensor = lambda d: torch.tensor(d["data"]).view(d["shape"])
        with torch.no_grad():
            enc = model.encode(t("input_ids"), t("attention_mask"))
            logits = model.head(model.decode(t("decoder_input_ids"), enc, t("attention_mask"), t("decoder_attention_mask"))[0])
        ok, diff = close(enc, tensor(f["encoder_last_hidden_state"]), t("attention_mask").bool())
        assert ok, f"{case}: encoder output differs from transformers by {diff}"
        ok, diff = close(logits, tensor(f["logits"]), t("compare_mask").bool())
        assert ok, f"{case}: logits differ from transformers by {diff}"
        for g in e["generate"]:
            steps = []
            out = sample(model, torch.tensor(g["input_ids"]), torch.tensor(g["attention_mask"]), g["max_new_tokens"], None,
                         greedy=True, step_logits=steps)
            tokens = [[step[0][i] for step in out] for i in range(len(g["input_ids"]))]
            assert tokens == g["new_tokens"], f"{case} {g['name']}: greedy tokens {tokens} != transformers {g['new_tokens']}"
            ok, diff = close(torch.stack(steps), tensor(g["step_logits"]))
            assert ok, f"{case} {g['name']}: cached step logits differ from transformers by {diff}"
        print(f"{case}: encoder, logits and cached greedy generation equal transformers v4.44", file=sys.stderr)
    return cases


if __name__ == "__main__":
    # /usr/bin/python3 bench/reference/t5.py check tests/RlhfSharp.Tests/fixtures/hf-t5
    if len(sys.argv) == 3 and sys.argv[1] == "check":
        check(sys.argv[2])
        print(json.dumps({"impl": "pytorch", "bench": "t5-check", "ok": True}))
    else:
        print("usage: t5.py check <hf-t5 fixtures folder>", file=sys.stderr)
        sys.exit(2)
