using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using RlhfSharp.Models.T5;
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

    /// <summary><see cref="PerSample(CausalLM, CausalLM, SampleBatch)"/> copied to the CPU as doubles.</summary>
    public static double[] PerSampleValues(CausalLM policy, CausalLM reference, SampleBatch batch) =>
        PerSample(policy, reference, batch).cpu().data<float>().ToArray().Select(x => (double)x).ToArray();

    /// <summary>
    /// The same for encoder-decoders (T5) on rows as <see cref="Seq2SeqSampler.Rollouts"/> lays them out (the right-padded
    /// encoder prompt, then the decoder's tokens): both models read the prompt with their encoder and score the decoder
    /// tokens after the start token (<see cref="Seq2SeqActor"/>, PPO's view of a T5 policy), summed over the response mask.
    /// </summary>
    public static Tensor PerSample(T5ForConditionalGeneration policy, T5ForConditionalGeneration reference, SampleBatch batch)
    {
        int p = batch.PromptLength, n = (int)batch.ResponseMask.shape[1];
        Tensor DecoderLogprobs(T5ForConditionalGeneration model)
        {
            // Positions are unused by the encoder-decoder (T5's relative bias is computed from the lengths).
            var f = new Seq2SeqActor(model).Forward(batch.Sequences, batch.AttentionMask, batch.AttentionMask, p, withHidden: false);
            return TokenLogprobs.Of(f.Logits, f.Tokens).narrow(1, f.Start, n);
        }
        return ((DecoderLogprobs(policy) - DecoderLogprobs(reference)) * batch.ResponseMask).sum(1);
    }

    /// <summary><see cref="PerSample(T5ForConditionalGeneration, T5ForConditionalGeneration, SampleBatch)"/> copied to the CPU as doubles.</summary>
    public static double[] PerSampleValues(T5ForConditionalGeneration policy, T5ForConditionalGeneration reference, SampleBatch batch) =>
        PerSample(policy, reference, batch).cpu().data<float>().ToArray().Select(x => (double)x).ToArray();
}
