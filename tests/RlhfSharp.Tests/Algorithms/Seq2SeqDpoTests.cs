using System.Text.Json.Nodes;
using RlhfSharp.Algorithms.Preference;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Algorithms;

/// <summary>DPO on encoder-decoder pairs (TRL is_encoder_decoder): the prompt to the encoder, chosen and rejected to the
/// decoder, sequence log-probs summed over label tokens. Expected log-probs are transformers v4.44's (fixtures/hf-t5).</summary>
public sealed class Seq2SeqDpoTests
{
    static string Dir => Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5", "t5v11_tiny_gated");

    /// <summary>Row 0 of the teacher-forced case: its prompt, its 5 decoder targets, and their log-probs under transformers.</summary>
    static (int[] Prompt, int[] Target, float[] Logprobs) Row0()
    {
        var f = JsonNode.Parse(File.ReadAllText(Path.Combine(Dir, "expected.json")))!["forward"]![0]!;
        var prompt = HfFixture.IntRows(f["input_ids"]!)[0].Select(x => (int)x).ToArray();
        var target = HfFixture.IntRows(f["decoder_input_ids"]!)[0].Skip(1).Select(x => (int)x).ToArray();
        var logprobs = HfFixture.Floats(f["token_logprobs"]!).data<float>().Take(target.Length).ToArray();
        return (prompt, target, logprobs);
    }

    [Fact]
    public void At_the_start_the_loss_is_ln2_and_sequence_logprobs_are_transformers_sums()
    {
        using var scope = NewDisposeScope();
        var (prompt, target, logprobs) = Row0();
        // The rejected answer is the chosen one cut after 3 tokens: in a causal decoder its log-probs are the first 3.
        var pair = new Seq2SeqPreference(prompt, target, target[..3]);
        var trainer = new Seq2SeqDpoTrainer(T5Checkpoint.Load(Dir), T5Checkpoint.Load(Dir), new DpoConfig(), padId: 0);
        using var _ = no_grad();
        var (loss, v) = trainer.PairLoss([pair]);
        Assert.Equal(Math.Log(2), loss.item<float>(), 5); // −log σ(0): policy = reference (Rafailov et al. 2023, Eq. 7)
        Assert.Equal(logprobs.Sum(), v[5], 4);            // logps/chosen
        Assert.Equal(logprobs.Take(3).Sum(), v[6], 4);    // logps/rejected
    }

    [Fact]
    public void Training_raises_the_chosen_reward_above_the_rejected()
    {
        using var scope = NewDisposeScope();
        var (prompt, target, _) = Row0();
        var pairs = new List<Seq2SeqPreference> { new(prompt, target, [.. target.Reverse()]), new(prompt[..4], target[..3], [63, 63, 63]) };
        var config = new DpoConfig { BatchSize = 2, Epochs = 8, SaveEvery = 0, Beta = 0.5, Optimizer = new DpoConfig().Optimizer with { LearningRate = 1e-2 } };
        var trainer = new Seq2SeqDpoTrainer(T5Checkpoint.Load(Dir), T5Checkpoint.Load(Dir), config, padId: 0);
        var before = trainer.Evaluate(pairs);
        var after = trainer.Train(pairs, pairs);
        Assert.Equal(0, before["eval_margin"], 6);
        Assert.True(after["eval_margin"] > 0.5, $"margin {after["eval_margin"]:F3}");
        Assert.Equal(1.0, after["eval_accuracy"]);
        Assert.True(after["eval_loss"] < Math.Log(2) - 0.1, $"loss {after["eval_loss"]:F3}");
    }
}
