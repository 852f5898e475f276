"""The PyTorch side of rlhf-bench ppo-memory (issue 12 part 3): one LoRA PPO step on one shared base, in plain PyTorch 1.13
eager (no peft/transformers here). It follows what OpenRLHF's PPO does with a LoRA actor and TRL's multi-adapter RL does
with one base (trl docs/source/multi_adapter_rl.md): the actor, critic and reward model are adapters on the same frozen
base, the KL reference is the base with the adapters off.

One step = sample (KV cache, temperature 1) -> experience without gradients (actor and reference log-probs, critic values,
reward-model score at the last token; k1 KL-shaped rewards, GAE gamma 1 lambda 0.95, whitened advantages) -> one update of
the actor (clipped surrogate, token mean, grad clip 1.0, AdamW) and of the critic (clipped value loss), OpenRLHF's defaults
as PpoConfig's. LoRA r 8, alpha 16 on q_proj and v_proj (PEFT's defaults: A kaiming-uniform, B zeros), dropout off (PPO
turns it off so old and new log-probs are the same function)."""
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from models import CONFIGS, CausalLM


class LoraLinear(nn.Module):
    """A frozen Linear plus named LoRA adapters (peft LoraLayer with several adapters); `active` picks one, None = base only."""

    def __init__(self, base: nn.Linear, names, r=8, alpha=16):
        super().__init__()
        self.base, self.scaling, self.active = base, alpha / r, None
        self.lora_A = nn.ModuleDict({n: nn.Linear(base.in_features, r, bias=False) for n in names})
        self.lora_B = nn.ModuleDict({n: nn.Linear(r, base.out_features, bias=False) for n in names})
        for n in names:
            nn.init.kaiming_uniform_(self.lora_A[n].weight, a=math.sqrt(5))
            nn.init.zeros_(self.lora_B[n].weight)

    def forward(self, x):
        y = self.base(x)
        if self.active is None:
            return y
        return y + self.lora_B[self.active](self.lora_A[self.active](x)) * self.scaling


class SharedBasePpo:
    ROLES = ("actor", "critic", "rm")

    def __init__(self, name):
        self.c = CONFIGS[name]
        self.model = CausalLM(self.c)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.loras = []
        for block in self.model.blocks:
            for proj in ("q_proj", "v_proj"):
                m = LoraLinear(getattr(block.attn, proj), self.ROLES)
                setattr(block.attn, proj, m)
                self.loras.append(m)
        self.value_head = nn.Linear(self.c.d, 1, bias=False)  # the critic's (a trainable copy of the RM's head)
        self.score_head = nn.Linear(self.c.d, 1, bias=False).requires_grad_(False)
        for m in self.loras:
            m.lora_A["rm"].requires_grad_(False)
            m.lora_B["rm"].requires_grad_(False)
        self.actor_params = [p for m in self.loras for p in (m.lora_A["actor"].weight, m.lora_B["actor"].weight)]
        self.critic_params = [p for m in self.loras for p in (m.lora_A["critic"].weight, m.lora_B["critic"].weight)]
        self.critic_params.append(self.value_head.weight)
        self.actor_opt = torch.optim.AdamW(self.actor_params, lr=1e-6, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)
        self.critic_opt = torch.optim.AdamW(self.critic_params, lr=9e-6, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)

    def use(self, role):
        for m in self.loras:
            m.active = role

    @torch.no_grad()
    def sample(self, prompts, new_tokens, generator):
        self.use("actor")
        logits, past = self.model(prompts, None, last_only=True)
        out = []
        for s in range(new_tokens):
            scores = logits[:, -1, :].float()
            chosen = scores.softmax(-1).multinomial(1, generator=generator)
            scores.log_softmax(-1).gather(1, chosen)  # the sampler's log-prob of the token (ours keeps it too)
            out.append(chosen)
            if s < new_tokens - 1:
                logits, past = self.model(chosen, past, last_only=True)
        return torch.cat([prompts] + out, dim=1)

    def logprobs(self, seq, p, entropy=False):
        """log pi(response token) from one forward over prompt + response (OpenRLHF: logits[:, :-1], the last n)."""
        logits, _ = self.model(seq)
        logp = logits[:, :-1].float().log_softmax(-1)
        n = seq.shape[1] - p
        lp = logp.gather(-1, seq[:, 1:, None]).squeeze(-1)[:, -n:]
        if not entropy:
            return lp, None
        ent = -(logp.exp() * logp).sum(-1)[:, -n:]
        return lp, ent

    def values(self, seq, p):
        h, _ = self.model(seq, hidden=True)
        return self.value_head(h).squeeze(-1)[:, p - 1:-1]

    @torch.no_grad()
    def experience(self, seq, p, kl_coef=0.01, gamma=1.0, lam=0.95):
        self.use("actor")
        old, _ = self.logprobs(seq, p)
        self.use(None)
        ref, _ = self.logprobs(seq, p)
        self.use("critic")
        values = self.values(seq, p)
        self.use("rm")
        h, _ = self.model(seq, hidden=True)
        score = self.score_head(h[:, -1]).squeeze(-1).clamp(-10, 10)
        kl = old - ref
        rewards = -kl_coef * kl
        rewards[:, -1] += score
        n = rewards.shape[1]
        adv, last = torch.zeros_like(rewards), torch.zeros(rewards.shape[0])
        for t in reversed(range(n)):
            nxt = values[:, t + 1] if t + 1 < n else torch.zeros(rewards.shape[0])
            delta = rewards[:, t] + gamma * nxt - values[:, t]
            last = delta + gamma * lam * last
            adv[:, t] = last
        returns = adv + values
        adv = (adv - adv.mean()) / (adv.var() + 1e-8).sqrt()
        return old, values, returns, adv

    def update(self, seq, p, old, old_values, returns, adv, clip=0.2, value_clip=0.2):
        self.model.train()
        self.use("actor")
        lp, ent = self.logprobs(seq, p, entropy=True)
        ratio = (lp - old).clamp(-20, 20).exp()
        loss = -torch.minimum(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv).mean()
        entropy = ent.mean().item()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.actor_params, 1.0)
        self.actor_opt.step()
        self.actor_opt.zero_grad()
        del lp, ent, ratio, loss
        self.use("critic")
        v = self.values(seq, p)
        v_clipped = old_values + (v - old_values).clamp(-value_clip, value_clip)
        vloss = 0.5 * torch.maximum((v - returns).square(), (v_clipped - returns).square()).mean()
        vloss.backward()
        torch.nn.utils.clip_grad_norm_(self.critic_params, 1.0)
        self.critic_opt.step()
        self.critic_opt.zero_grad()
        self.model.eval()
        return entropy


def ppo_step(r, name, prompts, prompt, new_tokens, steps):
    c = CONFIGS[name]
    t = time.perf_counter()
    ppo = SharedBasePpo(name)
    ppo.model.eval()
    r["build_s"] = time.perf_counter() - t
    r["weight_mb"] = sum(p.numel() * p.element_size() for p in {id(p): p for m in (ppo.model, ppo.value_head, ppo.score_head) for p in m.parameters()}.values()) / 1048576
    ids = torch.randint(3, c.vocab, (prompts, prompt))
    g = torch.Generator().manual_seed(1)
    times, phases = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        seq = ppo.sample(ids, new_tokens, g)
        t1 = time.perf_counter()
        old, values, returns, adv = ppo.experience(seq, prompt)
        t2 = time.perf_counter()
        ppo.update(seq, prompt, old, values, returns, adv)
        t3 = time.perf_counter()
        times.append(t3 - t0)
        phases.append({"generate": t1 - t0, "experience": t2 - t1, "train": t3 - t2})
    r.update(model=name, shared_base=True, prompts=prompts, prompt=prompt, new=new_tokens, chunk=0, steps=steps,
             s_per_step=times[-1], s_per_step_all=times, phases=phases,
             peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
