using System.Text.Json.Nodes;
using RlhfSharp.Algorithms.Preference;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Lora;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Algorithms;

/// <summary>
/// KTO on encoder-decoder examples (TRL KTOTrainer with is_encoder_decoder): the prompt to the encoder, the completion
/// as labels, its log-prob summed over them, and the KL reference point from mismatched (prompt, completion) pairs.
/// Expected log-probs are transformers v4.44's (fixtures/hf-t5).
/// </summary>
public sealed class Seq2SeqKtoTests
{
    static string Dir => Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5", "t5v11_tiny_gated");

    /// <summary>Both rows of the teacher-forced case: prompt (unpadded), decoder targets, their transformers log-probs.</summary>
    static List<(int[] Prompt, int[] Target, float[] Logprobs)> Rows()
    {
        var f = JsonNode.Parse(File.ReadAllText(Path.Combine(Dir, "expected.json")))!["forward"]![0]!;
        var ids = HfFixture.IntRows(f["input_ids"]!); var mask = HfFixture.IntRows(f["attention_mask"]!);
        var dec = HfFixture.IntRows(f["decoder_input_ids"]!); var lpMask = HfFixture.IntRows(f["token_logprobs_mask"]!);
        var lp = HfFixture.Floats(f["token_logprobs"]!);
        return Enumerable.Range(0, 2).Select(i =>
        {
            int n = (int)lpMask[i].Sum();
            return (ids[i].Where((_, j) => mask[i][j] == 1).Select(x => (int)x).ToArray(), dec[i].Skip(1).Take(n).Select(x => (int)x).ToArray(),
                lp[i].data<float>().Take(n).ToArray());
        }).ToList();
    }

    static DpoConfig Kto(int epochs = 1, double lr = 1e-6) => new()
    {
        Loss = PreferenceLossKind.Kto, BatchSize = 2, Epochs = epochs, SaveEvery = 0, Beta = 0.5,
        Optimizer = new DpoConfig().Optimizer with { LearningRate = lr },
    };

    [Fact]
    public void At_the_start_the_loss_is_one_half_the_reference_point_zero_and_logps_are_transformers_sums()
    {
        using var scope = NewDisposeScope();
        var rows = Rows();
        var examples = new List<LabeledExample> { new(rows[0].Prompt, rows[0].Target, true), new(rows[1].Prompt, rows[1].Target, false) };
        var trainer = new Seq2SeqKtoTrainer(T5Checkpoint.Load(Dir), T5Checkpoint.Load(Dir), Kto(), padId: 0);
        using var _ = no_grad();
        var (loss, m) = trainer.BatchLoss(examples, [1, 0], [0, 1]);
        Assert.Equal(0.5, loss.item<float>(), 5); // 1 − σ(β·0): policy = reference (Ethayarajh et al. 2024, Eq. 7)
        Assert.Equal(0, m["kl"]);
        Assert.Equal(rows[0].Logprobs.Sum(), m["logps/chosen"], 4);
        Assert.Equal(rows[1].Logprobs.Sum(), m["logps/rejected"], 4);
    }

    [Fact]
    public void The_reference_point_is_the_mean_policy_to_reference_log_ratio_of_the_mismatched_pairs_clamped_at_zero()
    {
        using var scope = NewDisposeScope();
        var rows = Rows();
        using var policy = T5Checkpoint.Load(Dir);
        using var generator = new Generator(7); // not torch's global one, which parallel tests draw from
        using (no_grad()) foreach (var w in policy.parameters()) w.add_(randn(w.shape, dtype: w.dtype, generator: generator) * 0.05);
        using var reference = T5Checkpoint.Load(Dir);
        var examples = new List<LabeledExample> { new(rows[0].Prompt, rows[0].Target, true), new(rows[1].Prompt, rows[1].Target, false) };
        var trainer = new Seq2SeqKtoTrainer(policy, reference, Kto(), padId: 0);
        using var _ = no_grad();
        var (_, m) = trainer.BatchLoss(examples, [1, 0], [0, 1]);
        // Each prompt with the other example's completion, summed label log-probs under each model.
        double LogRatio(int prompt, int target)
        {
            var p = Seq2SeqLogprobs.Of(policy, [rows[prompt].Prompt], [rows[target].Target], 0).Logprobs.sum().item<float>();
            var r = Seq2SeqLogprobs.Of(reference, [rows[prompt].Prompt], [rows[target].Target], 0).Logprobs.sum().item<float>();
            return p - r;
        }
        double expected = Math.Max(0, (LogRatio(0, 1) + LogRatio(1, 0)) / 2);
        double own = (LogRatio(0, 0) + LogRatio(1, 1)) / 2;
        Assert.True(expected > 0, $"mismatched log-ratio {expected}: the seed is picked so the clamp at 0 does not hide the pairing");
        Assert.NotEqual(own, expected, 3); // the KL batch is not the examples' own completions
        Assert.Equal(expected, m["kl"], 4);
        Assert.Equal(0.5 * LogRatio(0, 0), m["rewards/chosen"], 4);
        Assert.Equal(0.5 * LogRatio(1, 1), m["rewards/rejected"], 4);
    }

    [Fact]
    public void Training_raises_desirable_rewards_above_undesirable_ones_and_lora_uses_the_adapters_off_reference()
    {
        using var scope = NewDisposeScope();
        var rows = Rows();
        var examples = new List<LabeledExample>
        {
            new(rows[0].Prompt, rows[0].Target, true), new(rows[1].Prompt, rows[1].Target, false),
            new(rows[0].Prompt[..4], rows[0].Target[..3], true), new(rows[1].Prompt[..3], [63, 63, 63], false),
        };
        var trainer = new Seq2SeqKtoTrainer(T5Checkpoint.Load(Dir), T5Checkpoint.Load(Dir), Kto(epochs: 8, lr: 1e-2), padId: 0);
        var before = trainer.Evaluate(examples);
        var after = trainer.Train(examples, examples);
        Assert.Equal(0, before["eval_margin"], 6);
        Assert.True(after["eval_margin"] > 0.5, $"margin {after["eval_margin"]:F3}");
        Assert.True(after["eval_loss"] < 0.5 - 0.05, $"loss {after["eval_loss"]:F3}");

        using var policy = T5Checkpoint.Load(Dir);
        manual_seed(5);
        T5Lora.Attach(policy, new LoraConfig { R = 4, Alpha = 16 });
        var lora = new Seq2SeqKtoTrainer(policy, policy, Kto(epochs: 4, lr: 1e-2), padId: 0);
        Assert.Equal(0, lora.Evaluate(examples)["eval_margin"], 6); // B = 0: adapters on = adapters off
        Assert.True(lora.Train(examples, examples)["eval_margin"] > 0, "LoRA KTO margin");
        var e = Assert.Throws<RlhfException>(() => new Seq2SeqKtoTrainer(T5Checkpoint.Load(Dir), T5Checkpoint.Load(Dir), Kto() with { PrecomputeReferenceLogprobs = true }, 0));
        Assert.Contains("precompute_reference_logprobs", e.Message);
    }
}
