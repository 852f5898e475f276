using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Evaluation;
using RlhfSharp.Generation;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Evaluation;

/// <summary>
/// <c>rlhf eval --reference-model</c>'s KL for T5: per sample, Σ over the decoder tokens of log π − log π_ref on rows laid
/// out as the seq2seq sampler's rollouts (the right-padded encoder prompt, then the decoder tokens).
/// </summary>
public sealed class Seq2SeqKlToReferenceTests
{
    static string Dir => Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5", "t5v11_tiny_gated");

    [Fact]
    public void Per_sample_kl_sums_transformers_decoder_logprobs_minus_the_references_over_the_response()
    {
        using var scope = NewDisposeScope();
        var f = JsonNode.Parse(File.ReadAllText(Path.Combine(Dir, "expected.json")))!["forward"]![0]!;
        var ids = HfFixture.Ints(f["input_ids"])!; var mask = HfFixture.Ints(f["attention_mask"])!;
        var dec = HfFixture.Ints(f["decoder_input_ids"])!;
        var lpMask = HfFixture.Ints(f["token_logprobs_mask"])!.to(float32);
        long n = dec.shape[1] - 1;
        var batch = new SampleBatch
        {
            Sequences = cat([ids, dec.narrow(1, 1, n)], 1), AttentionMask = cat([mask, lpMask.to(int64)], 1), ResponseMask = lpMask,
            Logprobs = zeros(2, n), ModelLogprobs = zeros(2, n), PromptLength = (int)ids.shape[1], NewTokens = [], FinishReasons = [],
        };
        using var policy = T5Checkpoint.Load(Dir);
        using var reference = T5Checkpoint.Load(Dir);
        using var _ = no_grad();
        Assert.All(KlToReference.PerSampleValues(policy, reference, batch), kl => Assert.Equal(0.0, kl));

        manual_seed(2);
        foreach (var w in reference.parameters()) w.add_(randn_like(w) * 0.05);
        // The reference's own decoder log-probs of the same rows, teacher-forced with the start token in front.
        var start = zeros(2, 1, int64);
        var tokens = cat([start, dec.narrow(1, 1, n)], 1);
        var refLogprobs = TokenLogprobs.Of(reference.Forward(ids, mask, tokens), tokens);
        var expected = ((HfFixture.Floats(f["token_logprobs"]!) - refLogprobs) * lpMask).sum(1);
        var kl = KlToReference.PerSample(policy, reference, batch);
        HfFixture.AssertClose(expected, kl, null, "per-sample KL", atol: 1e-4);
        Assert.True(kl.abs().min().item<float>() > 1e-3, "the perturbed reference must differ");
    }
}
