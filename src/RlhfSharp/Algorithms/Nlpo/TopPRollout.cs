using RlhfSharp.Algorithms.Ppo;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Nlpo;

/// <summary>
/// One generation under NLPO's masking policy: the top-p set of the masking policy's next-token logits at every step,
/// recorded so the loss masks the actor with the sets the rollout was sampled with (RL4LMs keeps them in its rollout
/// buffer). The causal and the encoder-decoder masking policies differ only in how they reach the next logits
/// (<see cref="Begin"/>, <see cref="Advance"/>).
/// </summary>
abstract class TopPRollout(TopPRule rule) : IRecordedTokenMask
{
    readonly List<Tensor> steps = [];

    /// <summary>The masking policy's (B, V) float32 logits for the next token; replaced by each step.</summary>
    protected Tensor? Logits { get; private set; }

    public abstract void Begin(Tensor promptIds, Tensor promptMask, int maxNewTokens);

    public abstract void Advance(Tensor next, Tensor attentionMask, Tensor positions);

    /// <summary>Takes <paramref name="next"/> (detached from any scope) as the logits of the coming step.</summary>
    protected void SetLogits(Tensor next)
    {
        Logits?.Dispose();
        Logits = next;
    }

    public Tensor Allowed()
    {
        var allowed = rule.Allowed(Logits!);
        steps.Add(allowed.clone().DetachFromDisposeScope());
        return allowed;
    }

    public Tensor Recorded()
    {
        if (steps.Count == 0) throw new InvalidOperationException("No token was sampled with this mask.");
        return stack(steps, 1);
    }

    /// <summary>Frees what the subclass holds beside the logits (its cache, the encoder output).</summary>
    protected abstract void DisposeState();

    public void Dispose()
    {
        foreach (var t in steps) t.Dispose();
        steps.Clear();
        Logits?.Dispose();
        Logits = null;
        DisposeState();
    }
}
