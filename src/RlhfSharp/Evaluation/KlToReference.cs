using RlhfSharp.Generation;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Evaluation;

/// <summary>
/// The KL from a policy to a reference model, estimated on the policy's own samples: for each sample
/// Σₜ log π(yₜ) − log π_ref(yₜ) over its response tokens. Its mean over samples is an unbiased estimate of
/// KL(π ‖ π_ref) per sequence (the "k1" estimator), the x-axis of reward-vs-KL plots (Gao et al. 2022).
/// </summary>
public static class KlToReference
{
    /// <summary>
    /// (B) per-sample sums of log π − log π_ref over the response tokens of <paramref name="batch"/>. Call under
    /// <c>no_grad</c> inside a dispose scope; both models see the same padded sequences and positions.
    /// </summary>
    public static Tensor PerSample(CausalLM policy, CausalLM reference, SampleBatch batch)
    {
        int p = batch.PromptLength, n = (int)batch.ResponseMask.shape[1];
        var positions = Transformer.PositionsFromMask(batch.AttentionMask);
        // Logits at position t predict token t+1, so the response tokens' logprobs start at p − 1.
        var lpPolicy = TokenLogprobs.Of(policy.Forward(batch.Sequences, batch.AttentionMask, positions), batch.Sequences).narrow(1, p - 1, n);
        var lpRef = TokenLogprobs.Of(reference.Forward(batch.Sequences, batch.AttentionMask, positions), batch.Sequences).narrow(1, p - 1, n);
        return ((lpPolicy - lpRef) * batch.ResponseMask).sum(1);
    }

    /// <summary><see cref="PerSample"/> copied to the CPU as doubles.</summary>
    public static double[] PerSampleValues(CausalLM policy, CausalLM reference, SampleBatch batch) =>
        PerSample(policy, reference, batch).cpu().data<float>().ToArray().Select(x => (double)x).ToArray();
}
