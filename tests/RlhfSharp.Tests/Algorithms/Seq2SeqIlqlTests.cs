using System.Text.Json.Nodes;
using RlhfSharp.Algorithms.Ilql;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Algorithms;

/// <summary>
/// ILQL on T5 (trlX <c>Seq2SeqILQL</c>): Q and V heads on the decoder's hidden states, trained by the decoder-only
/// <see cref="IlqlTrainer"/> through <see cref="Seq2SeqIlqlPolicy"/>. Expected values come from
/// fixtures/hf-t5/ilql/generate_ilql.py (a PyTorch 1.13 implementation of trlX's seq2seq layout and loss on a T5 forward
/// checked against transformers).
/// </summary>
public sealed class Seq2SeqIlqlTests
{
    static string Fixtures => Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5");
    static JsonNode Expected => JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures, "ilql", "expected_ilql.json")))!;

    static List<ScoredExample> Examples(JsonNode c) => c["examples"]!.AsArray().Select(e => new ScoredExample(
        e!["prompt"]!.AsArray().Select(x => (int)x!).ToArray(), e["completion"]!.AsArray().Select(x => (int)x!).ToArray(), (double)e["reward"]!)).ToList();

    static void Close(double expected, double actual, string what) =>
        Assert.True(Math.Abs(expected - actual) <= 1e-5 + 1e-5 * Math.Abs(expected), $"{what}: expected {expected}, got {actual}");

    [Theory]
    [InlineData("t5_tiny")]
    [InlineData("t5v11_tiny_gated")]
    public void Loss_and_its_parts_on_t5_match_trlx_seq2seq_ilql(string name)
    {
        var expected = Expected;
        var c = expected["cases"]!.AsArray().Single(x => (string)x!["case"]! == name)!;
        using var model = T5Checkpoint.Load(Path.Combine(Fixtures, name));
        var (heads, _) = IlqlHeadsFile.Load(Path.Combine(Fixtures, "ilql", (string)c["heads"]!), model);
        using var __ = heads;
        var p = expected["params"]!;
        var config = new IlqlConfig
        {
            Gamma = (double)p["gamma"]!, Tau = (double)p["tau"]!, CqlScale = (double)p["cql_scale"]!, AwacScale = (double)p["awac_scale"]!, AwacBeta = (double)p["beta"]!,
        };
        var examples = Examples(c);
        // Evaluate normalises the rewards over the examples it is given, as make_experience_seq2seq does over its samples.
        var normalised = IlqlLoss.NormalizeRewards(examples.Select(e => e.Reward).ToList());
        foreach (var (e, a) in c["normalized_returns"]!.AsArray().Select(x => (double)x!).Zip(normalised)) Close(e, a, "normalised return");
        var result = new IlqlTrainer(new Seq2SeqIlqlPolicy(model), heads, config, padId: 0).Evaluate(examples);
        Close((double)c["loss"]!, result["eval_loss"], "loss");
        Close((double)c["loss_q"]!, result["eval_loss_q"], "loss_q");
        Close((double)c["loss_v"]!, result["eval_loss_v"], "loss_v");
        Close((double)c["loss_awac"]!, result["eval_loss_awac"], "loss_awac");
    }

    [Fact]
    public void The_seq2seq_batch_puts_the_start_token_before_each_completion_and_every_completion_token_is_an_action()
    {
        using var _ = NewDisposeScope();
        var examples = new List<ScoredExample> { new([7, 8, 1], [20, 21, 1], 1.0), new([9, 1], [30, 1], -1.0) };
        var b = IlqlBatch.CreateSeq2Seq(examples, [0.5, -0.5], padId: 0, decoderStartId: 0);
        long[] Host(Tensor t) => t.cpu().data<long>().ToArray();
        Assert.Equal([7, 8, 1, 9, 1, 0], Host(b.EncoderIds!));
        Assert.Equal([1, 1, 1, 1, 1, 0], Host(b.EncoderMask!));
        Assert.Equal([0, 20, 21, 1, 0, 30, 1, 0], Host(b.InputIds));
        Assert.Equal([20, 21, 1, 30, 1, 0], Host(b.Actions));
        Assert.Equal([0, 1, 2, 0, 1, 0], Host(b.ActionIxs));
        Assert.Equal([0, 1, 2, 3, 0, 1, 2, 0], Host(b.StateIxs));
        Assert.Equal([1f, 1, 1, 0, 1, 1, 0, 0], b.Dones.cpu().data<float>().ToArray());
        Assert.Equal([0f, 0, 0.5f, 0, -0.5f, 0], b.Rewards.cpu().data<float>().ToArray());
        // trlX's seq2seq actions are decoder_input_ids[:, 1:]: the same tokens.
        Assert.Equal(Host(b.Actions), Host(b.InputIds.narrow(1, 1, 3)));
    }

    [Theory]
    [InlineData("t5_tiny")]
    [InlineData("t5v11_tiny_gated")]
    public void Greedy_decoding_with_the_heads_follows_log_pi_plus_beta_times_the_advantage(string name)
    {
        var expected = Expected;
        var c = expected["cases"]!.AsArray().Single(x => (string)x!["case"]! == name)!;
        using var model = T5Checkpoint.Load(Path.Combine(Fixtures, name));
        Assert.True(IlqlHeadsFile.AttachIfPresent(model, Path.Combine(Fixtures, "ilql", (string)c["heads"]!)));
        Assert.Equal((double)expected["decode_beta"]!, model.Ilql!.Beta);
        var prompt = c["greedy_prompt"]!.AsArray().Select(x => (int)x!).ToArray();
        var want = c["greedy_ilql"]!.AsArray().Select(x => (int)x!).ToArray();
        var options = new SamplingOptions { Temperature = 0, MaxNewTokens = want.Length };
        var sampler = new Seq2SeqSampler(model);
        Assert.Equal(want, sampler.Generate([prompt], options)[0].NewIds);
        // β = 0 is the language model alone.
        model.Ilql = model.Ilql with { Beta = 0 };
        Assert.Equal(c["greedy_lm"]!.AsArray().Select(x => (int)x!).ToArray(), sampler.Generate([prompt], options)[0].NewIds);
        model.Ilql.Heads.Dispose();
    }

    [Fact]
    public void Training_on_t5_gives_the_rewarded_first_decoder_token_the_larger_advantage()
    {
        using var model = T5Checkpoint.Load(Path.Combine(Fixtures, "t5v11_tiny_gated"));
        TorchSharp.torch.manual_seed(5);
        using var heads = new IlqlHeads(model.Config.DModel, model.Config.VocabSize);
        const int good = 41, bad = 60;
        var prompts = Enumerable.Range(0, 4).Select(i => new[] { 17 + i, 23, 1 }).ToArray();
        var examples = prompts.SelectMany(p => new[] { new ScoredExample(p, [good, 8, 1], 1.0), new ScoredExample(p, [bad, 8, 1], 0.0) }).ToList();
        var config = new IlqlConfig
        {
            Epochs = 40, BatchSize = 8, MaxLength = 16, MaxPromptLength = 4, TotalSteps = 40, Alpha = 1.0, StepsForTargetQSync = 1,
            Optimizer = new OptimizerConfig { LearningRate = 1e-3, Schedule = ScheduleKind.Constant, WarmupRatio = 0 },
        };
        var log = new MetricsLog(null);
        var result = new IlqlTrainer(new Seq2SeqIlqlPolicy(model), heads, config, padId: 0) { Metrics = log }.Train(examples, examples.Take(4).ToList());
        Assert.Equal(40, log.Rows.Count);
        Assert.True(log.Rows[^1]["loss_q"] < log.Rows[0]["loss_q"] / 2, $"TD loss {log.Rows[0]["loss_q"]:F3} → {log.Rows[^1]["loss_q"]:F3}");
        Assert.True(double.IsFinite(result["eval_loss"]));

        using var _ = no_grad();
        foreach (var p in prompts)
        {
            var ids = tensor(p.Select(x => (long)x).ToArray(), [1, p.Length]);
            var h = model.Decode(tensor(new long[] { model.Config.DecoderStartTokenId }, [1, 1]), model.Encode(ids, ones_like(ids)), ones_like(ids));
            var adv = heads.Advantage(h).flatten().data<float>().ToArray();
            Assert.True(adv[good] > adv[bad] + 0.5, $"prompt {string.Join(",", p)}: advantage {adv[good]:F3} (rewarded) vs {adv[bad]:F3}");
        }
    }
}
