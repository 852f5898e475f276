using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Models;

/// <summary>
/// A sparse mixture-of-experts MLP as transformers v4.44 computes it (MixtralSparseMoeBlock, Qwen2MoeSparseMoeBlock):
/// router logits gate(x), a float32 softmax over the experts, the top k kept (divided by their sum when
/// <see cref="MoeConfig.NormTopK"/>), each chosen expert's SwiGLU output weighted and summed; Qwen2-MoE adds a shared
/// expert scaled by sigmoid(shared_expert_gate(x)). Only the tokens routed to an expert go through it: the (token, slot)
/// pairs are sorted by expert once and each expert runs on its contiguous slice.
/// </summary>
public sealed class SparseMoe : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    public readonly Linear gate;
    public readonly ModuleList<Mlp> experts;
    public readonly Mlp? shared_expert;
    public readonly Linear? shared_expert_gate;
#pragma warning restore IDE1006
    readonly MoeConfig moe;

    /// <summary>The body's record this layer writes its router logits and load into (set by the body), and its place in it.</summary>
    internal RouterRecord? Record { get; set; }
    internal int RecordIndex { get; set; }

    public SparseMoe(TransformerConfig c, ScalarType? dtype = null) : base(nameof(SparseMoe))
    {
        moe = c.Moe ?? throw new ArgumentException("not a mixture-of-experts config");
        gate = LayerInit.Linear(c.HiddenSize, moe.NumExperts, hasBias: false, dtype);
        experts = new ModuleList<Mlp>(Enumerable.Range(0, moe.NumExperts).Select(_ => new Mlp(c, moe.ExpertSize, dtype)).ToArray());
        if (moe.SharedExpertSize is int shared)
        {
            shared_expert = new Mlp(c, shared, dtype);
            shared_expert_gate = LayerInit.Linear(c.HiddenSize, 1, hasBias: false, dtype);
        }
        RegisterComponents();
    }

    /// <param name="x">(B, T, hidden)</param>
    public override Tensor forward(Tensor x)
    {
        var shape = x.shape;
        var flat = x.reshape(-1, shape[^1]);                         // (N, hidden)
        var logits = gate.forward(flat);                             // (N, E)
        // A training forward (training mode, gradients on) leaves its logits for the load-balancing loss.
        bool record = Record is not null && training && is_grad_enabled();
        if (record) Record!.Logits[RecordIndex] = logits;
        var probs = logits.softmax(1, ScalarType.Float32);           // float32 whatever the weights' dtype, as HF
        var (weights, chosen) = probs.topk(moe.TopK, -1);            // (N, k)
        if (moe.NormTopK) weights = weights / weights.sum(-1, keepdim: true);
        weights = weights.to(x.dtype);

        int k = moe.TopK, e = moe.NumExperts;
        var slots = chosen.reshape(-1);                              // (N·k): the expert of each (token, slot)
        var order = slots.argsort();                                 // grouped by expert
        long[] load;
        if (!record) load = slots.bincount(null, e).cpu().data<long>().ToArray(); // one host copy per layer: the slice sizes
        else
        {
            // The real tokens' picks, for the expert-load log, ride along in the same host copy.
            var counted = Record!.Mask is null ? slots : slots.masked_select(Record.Mask.ne(0).repeat_interleave(k));
            var both = cat([slots.bincount(null, e), counted.bincount(null, e)]).cpu().data<long>().ToArray();
            load = both[..e];
            var sum = Record.Load[RecordIndex];
            for (int i = 0; i < e; i++) sum[i] += both[e + i];
        }
        var tokens = order.div(k, rounding_mode: RoundingMode.floor);
        var routed = flat.index_select(0, tokens);                   // (N·k, hidden), expert by expert
        var parts = new List<Tensor>(e);
        long offset = 0;
        for (int i = 0; i < e; i++)
        {
            if (load[i] == 0) continue;
            parts.Add(experts[i].forward(routed.narrow(0, offset, load[i])));
            offset += load[i];
        }
        var outputs = (parts.Count == 1 ? parts[0] : cat(parts, 0)) * weights.reshape(-1).index_select(0, order).unsqueeze(1);
        var y = zeros_like(flat).index_add(0, tokens, outputs, 1);
        if (shared_expert is not null)
            y = y + nn.functional.sigmoid(shared_expert_gate!.forward(flat)) * shared_expert.forward(flat);
        return y.reshape(shape);
    }
}
