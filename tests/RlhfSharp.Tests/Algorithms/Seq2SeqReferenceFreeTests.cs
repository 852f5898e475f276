using System.Text.Json.Nodes;
using RlhfSharp.Algorithms.Preference;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Algorithms;

/// <summary>
/// SimPO and ORPO on encoder-decoder pairs: no reference model, length-averaged label log-probs (and, for ORPO, the
/// token-mean NLL of the chosen labels). The expected losses are the papers' formulas (SimPO Eq. 6; ORPO Eqs. 4–7, as
/// TRL's CPO/ORPO trainers compute them) evaluated on transformers v4.44's token log-probs (fixtures/hf-t5).
/// </summary>
public sealed class Seq2SeqReferenceFreeTests
{
    static string Dir => Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5", "t5v11_tiny_gated");

    static (int[] Prompt, int[] Target, double[] Logprobs) Row0()
    {
        var f = JsonNode.Parse(File.ReadAllText(Path.Combine(Dir, "expected.json")))!["forward"]![0]!;
        var prompt = HfFixture.IntRows(f["input_ids"]!)[0].Select(x => (int)x).ToArray();
        var target = HfFixture.IntRows(f["decoder_input_ids"]!)[0].Skip(1).Select(x => (int)x).ToArray();
        var logprobs = HfFixture.Floats(f["token_logprobs"]!).data<float>().Take(target.Length).Select(x => (double)x).ToArray();
        return (prompt, target, logprobs);
    }

    static double LogSigmoid(double x) => -Math.Log(1 + Math.Exp(-x));
    static double Log1mExp(double x) => Math.Log(1 - Math.Exp(x));

    [Fact]
    public void Simpo_and_orpo_losses_are_the_papers_formulas_on_transformers_averaged_logprobs()
    {
        using var scope = NewDisposeScope();
        var (prompt, target, lp) = Row0();
        // Chosen: the 5 fixture tokens; rejected: its first 3 (a causal decoder gives them the same first log-probs).
        var pair = new Seq2SeqPreference(prompt, target, target[..3]);
        double chosen = lp.Average(), rejected = lp.Take(3).Average();
        var policy = T5Checkpoint.Load(Dir);
        using var noGrad = no_grad();

        var simpo = new Seq2SeqDpoTrainer(policy, policy, new DpoConfig { Loss = PreferenceLossKind.Simpo, Beta = 2.0, SimpoGamma = 0.5 }, padId: 0);
        var (loss, v) = simpo.PairLoss([pair]);
        Assert.Equal(-LogSigmoid(2.0 * (chosen - rejected) - 0.5), loss.item<float>(), 4);
        Assert.Equal(2.0 * chosen, v[1], 4); // rewards/chosen = β·avg log-prob

        var orpo = new Seq2SeqDpoTrainer(policy, policy, new DpoConfig { Loss = PreferenceLossKind.Orpo, Beta = 0.1 }, padId: 0);
        (loss, _) = orpo.PairLoss([pair]);
        double logOdds = (chosen - rejected) - (Log1mExp(chosen) - Log1mExp(rejected));
        double nll = -lp.Sum() / lp.Length;
        Assert.Equal(nll - 0.1 * LogSigmoid(logOdds), loss.item<float>(), 4);
    }

    [Fact]
    public void Simpo_training_on_t5_raises_the_chosen_reward_above_the_rejected()
    {
        using var scope = NewDisposeScope();
        var (prompt, target, _) = Row0();
        var pairs = new List<Seq2SeqPreference> { new(prompt, target, [.. target.Reverse()]), new(prompt[..4], target[..3], [63, 63, 63]) };
        var policy = T5Checkpoint.Load(Dir);
        var config = new DpoConfig { Loss = PreferenceLossKind.Simpo, BatchSize = 2, Epochs = 8, SaveEvery = 0, Beta = 2.0, Optimizer = new DpoConfig().Optimizer with { LearningRate = 1e-2 } };
        var trainer = new Seq2SeqDpoTrainer(policy, policy, config, padId: 0);
        double before = trainer.Evaluate(pairs)["eval_margin"];
        var after = trainer.Train(pairs, pairs);
        Assert.True(after["eval_margin"] > before + 0.5, $"margin {before:F3} → {after["eval_margin"]:F3}");
        Assert.Equal(1.0, after["eval_accuracy"]);
    }
}
