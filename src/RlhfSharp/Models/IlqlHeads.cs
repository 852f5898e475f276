using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Models;

/// <summary>
/// ILQL's heads on a policy's final (normed) hidden states (Snell et al. 2022; trlX <c>trlx/models/modeling_ilql.py</c>
/// <c>ILQLHeads</c>): a V head (hidden → 1), one or two Q heads (hidden → vocab) and a frozen target copy of each Q head
/// that follows it by Polyak averaging. Every head is trlX's <c>make_head</c>: Linear(h, 2h), ReLU, Linear(2h, out). Field
/// names are trlX's, so the parameter names are its <c>ilql_heads.*</c> state-dict keys (<c>q_heads.0.2.weight</c>).
/// </summary>
public sealed class IlqlHeads : nn.Module
{
#pragma warning disable IDE1006
    public readonly Sequential v_head;
    public readonly ModuleList<Sequential> q_heads;
    public readonly ModuleList<Sequential> target_q_heads;
#pragma warning restore IDE1006

    public int HiddenSize { get; }
    public int VocabSize { get; }
    /// <summary>Two Q heads and the minimum of their targets (trlX <c>two_qs</c> = True), else one.</summary>
    public bool TwoQs { get; }

    public IlqlHeads(int hiddenSize, int vocabSize, bool twoQs = true, ScalarType? dtype = null) : base(nameof(IlqlHeads))
    {
        (HiddenSize, VocabSize, TwoQs) = (hiddenSize, vocabSize, twoQs);
        v_head = Head(hiddenSize, 1, dtype);
        int n = twoQs ? 2 : 1;
        q_heads = nn.ModuleList(Enumerable.Range(0, n).Select(_ => Head(hiddenSize, vocabSize, dtype)).ToArray());
        target_q_heads = nn.ModuleList(Enumerable.Range(0, n).Select(_ => Head(hiddenSize, vocabSize, dtype)).ToArray());
        RegisterComponents();
        // trlX deep-copies each Q head into its target and freezes the copy: it moves only by SyncTargets.
        using (no_grad())
            foreach (var (target, q) in target_q_heads.Zip(q_heads))
                foreach (var (t, p) in target.parameters().Zip(q.parameters())) { t.copy_(p); t.requires_grad = false; }
    }

    static Sequential Head(int hidden, int output, ScalarType? dtype) =>
        nn.Sequential(nn.Linear(hidden, 2 * hidden, dtype: dtype), nn.ReLU(), nn.Linear(2 * hidden, output, dtype: dtype));

    /// <summary>The parameters the optimizer steps: V and Q heads (the targets are frozen).</summary>
    public IEnumerable<Parameter> Trainable => v_head.parameters().Concat(q_heads.SelectMany(q => q.parameters()));

    /// <summary>
    /// Q and target-Q values (each (B, A, vocab)) at the hidden states that choose actions, and V (B, S) at the state
    /// hidden states (trlX <c>ILQLHeads.forward</c> with <c>actions_ixs</c>/<c>states_ixs</c> already gathered).
    /// </summary>
    public (Tensor[] Qs, Tensor[] TargetQs, Tensor V) Forward(Tensor actionHidden, Tensor stateHidden) =>
        (q_heads.Select(q => q.forward(actionHidden)).ToArray(),
         target_q_heads.Select(q => q.forward(actionHidden)).ToArray(),
         v_head.forward(stateHidden).squeeze(-1));

    /// <summary>
    /// min over target heads of Q(s, ·) − V(s): (…, vocab) from (…, hidden), the advantage trlX's <c>generate</c> adds,
    /// times β, to the log-probabilities.
    /// </summary>
    public Tensor Advantage(Tensor hidden)
    {
        var q = target_q_heads[0].forward(hidden);
        for (int i = 1; i < target_q_heads.Count; i++) q = minimum(q, target_q_heads[i].forward(hidden));
        return q - v_head.forward(hidden);
    }

    /// <summary>
    /// Polyak averaging of each target head towards its Q head, θ' ← α·θ + (1 − α)·θ' (trlX
    /// <c>ILQLHeads._sync_target_q_heads</c>; α = 1 copies).
    /// </summary>
    public void SyncTargets(double alpha)
    {
        using var _ = no_grad();
        foreach (var (target, q) in target_q_heads.Zip(q_heads))
            foreach (var (t, p) in target.parameters().Zip(q.parameters()))
                t.mul_(1 - alpha).add_(p, alpha: alpha);
    }
}
