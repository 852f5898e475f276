using System.Text.Json.Nodes;
using RlhfSharp.Algorithms.Reward;
using RlhfSharp.Checkpoints;
using RlhfSharp.Models.T5;
using RlhfSharp.Tests.Tokenization;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Algorithms;

/// <summary>
/// The T5 reward model, transformers v4.44 <c>T5ForSequenceClassification</c> with one label: scores from the decoder at
/// the last EOS through the dense/tanh/out_proj head, checked against fixtures/hf-t5/rm/generate_rm.py (a PyTorch 1.13
/// implementation of that class, itself checked against the transformers outputs of the fixtures).
/// </summary>
public sealed class Seq2SeqRewardTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    static string Fixtures => Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5");
    static JsonArray Cases => JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures, "rm", "expected_scores.json")))!["cases"]!.AsArray();

    [Fact]
    public void Scores_of_padded_rows_equal_pytorchs_t5_for_sequence_classification_on_both_layouts()
    {
        foreach (var c in Cases)
        {
            using var scope = NewDisposeScope();
            using var rm = T5Checkpoint.LoadSequenceClassification(Path.Combine(Fixtures, "rm", (string)c!["folder"]!));
            Assert.Equal(1, rm.NumLabels);
            using var _ = no_grad();
            var scores = rm.Scores(HfFixture.Ints(c["input_ids"])!, HfFixture.Ints(c["attention_mask"])!);
            var expected = tensor(c["scores"]!.AsArray().Select(x => (float)x!).ToArray()).unsqueeze(1);
            HfFixture.AssertClose(expected, scores, null, $"{c["case"]} scores");
            Assert.Null(rm.RewardMean);
            HfFixture.AssertClose(expected.squeeze(1), rm.Rewards(HfFixture.Ints(c["input_ids"])!, HfFixture.Ints(c["attention_mask"])!), null, "rewards");
        }
    }

    [Fact]
    public void Save_writes_transformers_key_set_and_normalisation_and_loads_back_bit_identical()
    {
        var c = Cases[1]!;
        using var rm = T5Checkpoint.LoadSequenceClassification(Path.Combine(Fixtures, "rm", (string)c["folder"]!));
        rm.RewardMean = 0.25;
        rm.RewardStd = 2.0;
        var target = Path.Combine(_dir.Path, "rm");
        T5Checkpoint.Save(rm, target);
        var keys = SafeTensorsHeader.Read(Path.Combine(target, "model.safetensors")).Entries.Select(e => e.Name).Order(StringComparer.Ordinal);
        Assert.Equal(c["saved_keys"]!.AsArray().Select(k => (string)k!).Order(StringComparer.Ordinal), keys);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(target, "config.json")))!;
        Assert.Equal("T5ForSequenceClassification", (string)config["architectures"]![0]!);
        Assert.Single(config["id2label"]!.AsObject());
        using var back = T5Checkpoint.LoadSequenceClassification(target);
        Assert.Equal(0.25, back.RewardMean);
        Assert.Equal(2.0, back.RewardStd);
        var original = rm.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in back.named_parameters()) Assert.True(p.eq(original[name]).all().item<bool>(), name);
        using var _ = no_grad();
        var ids = HfFixture.Ints(c["input_ids"])!; var mask = HfFixture.Ints(c["attention_mask"])!;
        var expected = (tensor(c["scores"]!.AsArray().Select(x => (float)x!).ToArray()) - 0.25) / 2.0;
        HfFixture.AssertClose(expected, back.Rewards(ids, mask), null, "normalised rewards");
    }

    [Fact]
    public void A_language_model_folder_is_refused_as_a_reward_model_unless_a_new_head_is_allowed()
    {
        var lmDir = Path.Combine(Fixtures, "t5v11_tiny_gated");
        var e = Assert.Throws<RlhfException>(() => T5Checkpoint.LoadSequenceClassification(lmDir));
        Assert.Contains("not a T5 reward model", e.Message);
        manual_seed(3);
        using var rm = T5Checkpoint.LoadSequenceClassification(lmDir, allowNewHead: true);
        using var lm = T5Checkpoint.Load(lmDir);
        var body = lm.named_parameters().Where(p => p.name != "lm_head.weight").ToDictionary(p => p.name, p => p.parameter);
        Assert.Equal(body.Keys.Order(), rm.transformer.named_parameters().Select(p => p.name).Order());
        foreach (var (name, p) in rm.transformer.named_parameters()) Assert.True(p.eq(body[name]).all().item<bool>(), name);
        // _init_weights: weights normal(0, d_model^-0.5), biases zero.
        Assert.Equal(0f, rm.classification_head.dense.bias!.abs().max().item<float>());
        double std = rm.classification_head.dense.weight!.std().item<float>();
        Assert.InRange(std, 0.7 * Math.Pow(32, -0.5), 1.3 * Math.Pow(32, -0.5));
    }

    [Fact]
    public void Training_on_pairs_orders_them_and_a_row_without_eos_is_refused()
    {
        manual_seed(5);
        using var rm = T5Checkpoint.LoadSequenceClassification(Path.Combine(Fixtures, "t5_tiny"), allowNewHead: true);
        const int eos = 1;
        // Chosen responses end in an even token, rejected ones in an odd one; prompts differ.
        var groups = Enumerable.Range(0, 8).Select(i => new RankedGroup([[10 + i, 20, 30 + 2 * i, eos], [10 + i, 21, 31 + 2 * i, 7, eos]])).ToList();
        var config = new RewardConfig { Epochs = 6, PromptsPerBatch = 4, Optimizer = new OptimizerConfig { LearningRate = 3e-3, WarmupRatio = 0 } };
        var trainer = new RewardTrainer(rm, config, padId: 0);
        var before = trainer.Evaluate(groups);
        var after = trainer.Train(groups, groups);
        Assert.True(after["eval_loss"] < before["eval_loss"] - 0.2, $"loss {before["eval_loss"]} -> {after["eval_loss"]}");
        Assert.Equal(1.0, after["eval_accuracy"]);
        trainer.NormalizeOn(groups.Select(g => g.Sequences[0]).ToList());
        Assert.NotNull(rm.RewardMean);

        using var _ = no_grad();
        var e = Assert.Throws<RlhfException>(() => rm.Scores(tensor(new long[] { 5, 6, 7 }).unsqueeze(0), ones(1, 3, int64)));
        Assert.Contains("last EOS", e.Message);
    }
}
