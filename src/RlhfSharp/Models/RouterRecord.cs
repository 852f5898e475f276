using static TorchSharp.torch;

namespace RlhfSharp.Models;

/// <summary>
/// What the training forwards of a mixture-of-experts body leave for the router's load-balancing loss and the expert-load
/// log. A forward trains when the modules are in training mode with gradients on: rollouts (eval mode), frozen-reference
/// passes and KTO's KL pass (no_grad) never replace the router logits a trainer is about to add the loss for, and never
/// count as load. One per body (<see cref="DecoderBody.Router"/>), shared by its <see cref="SparseMoe"/> layers.
/// </summary>
public sealed class RouterRecord
{
    internal RouterRecord(int layers, int experts)
    {
        Logits = new Tensor?[layers];
        Load = Enumerable.Range(0, layers).Select(_ => new long[experts]).ToArray();
    }

    /// <summary>Per sparse layer, in layer order, the router logits (B·T, experts) of the last training forward; cleared when taken.</summary>
    internal Tensor?[] Logits { get; }
    /// <summary>(B·T) 1 for the real tokens of the last training forward (its attention mask, flattened), or null: every token.</summary>
    internal Tensor? Mask { get; set; }
    /// <summary>
    /// Real tokens' (token, slot) picks per sparse layer and expert, summed over every training forward so far. Never reset:
    /// a reader (a step, a round) keeps its own copy and logs the difference, so nested loops each see their own span.
    /// </summary>
    public long[][] Load { get; }
    /// <summary>Sum and count of the (unweighted) load-balancing losses the trainers added so far, for the metrics row.</summary>
    public double AuxSum { get; internal set; }
    public long AuxCount { get; internal set; }

    /// <summary>The layers' router logits of the last training forward, then forgotten (null when a layer recorded none).</summary>
    internal Tensor[]? Take()
    {
        // A forward whose dispose scope has ended (no trainer took its logits) counts as none.
        var taken = Logits.Any(l => l is null || l.IsInvalid) ? null : Logits.Select(l => l!).ToArray();
        Array.Clear(Logits);
        return taken;
    }
}
