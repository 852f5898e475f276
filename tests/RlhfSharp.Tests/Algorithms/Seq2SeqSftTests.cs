using System.Text.Json.Nodes;
using RlhfSharp.Algorithms.Sft;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Algorithms;

/// <summary>SFT of an encoder-decoder: the loss is on the target tokens, read by the decoder shifted right. Checked
/// against transformers v4.44's token log-probs of the T5 fixtures (fixtures/hf-t5).</summary>
public sealed class Seq2SeqSftTests
{
    static string Dir(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5", name);

    /// <summary>The teacher-forced case as (prompt, target) pairs: the unpadded encoder row, the decoder row after its start token.</summary>
    static (List<Seq2SeqExample> Examples, float[] Expected) FixtureExamples(string name)
    {
        var f = JsonNode.Parse(File.ReadAllText(Path.Combine(Dir(name), "expected.json")))!["forward"]![0]!;
        var ids = HfFixture.IntRows(f["input_ids"]!); var mask = HfFixture.IntRows(f["attention_mask"]!);
        var dec = HfFixture.IntRows(f["decoder_input_ids"]!); var lpMask = HfFixture.IntRows(f["token_logprobs_mask"]!);
        var examples = ids.Select((row, i) => new Seq2SeqExample(
            row.Where((_, j) => mask[i][j] == 1).Select(x => (int)x).ToArray(),
            dec[i].Skip(1).Where((_, j) => lpMask[i][j] == 1).Select(x => (int)x).ToArray())).ToList();
        var logprobs = HfFixture.Floats(f["token_logprobs"]!).data<float>().ToArray();
        int width = lpMask[0].Length;
        var expected = lpMask.SelectMany((row, i) => row.Select((m, j) => (m, v: logprobs[i * width + j])).Where(x => x.m == 1).Select(x => x.v)).ToArray();
        return (examples, expected);
    }

    [Theory]
    [InlineData("t5_tiny")]
    [InlineData("t5v11_tiny_gated")]
    public void Target_logprobs_and_eval_loss_match_transformers_token_logprobs(string name)
    {
        using var scope = NewDisposeScope();
        var model = T5Checkpoint.Load(Dir(name));
        var (examples, expected) = FixtureExamples(name);
        var trainer = new Seq2SeqSftTrainer(model, new SftConfig { BatchSize = 2 }, padId: 0);
        using (no_grad())
        {
            var lp = trainer.TargetLogprobs(examples);
            var actual = examples.SelectMany((e, i) => lp[i].narrow(0, 0, e.TargetIds.Length).data<float>().ToArray()).ToArray();
            Assert.Equal(expected.Length, actual.Length);
            for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5 + 1e-5 * Math.Abs(expected[i]), $"token {i}: {actual[i]} vs {expected[i]}");
        }
        var loss = trainer.Evaluate(examples)["eval_loss"];
        Assert.Equal(-expected.Select(x => (double)x).Average(), loss, 4);
    }

    [Fact]
    public void Training_on_targets_lowers_their_loss()
    {
        using var scope = NewDisposeScope();
        var model = T5Checkpoint.Load(Dir("t5v11_tiny_gated"));
        var (examples, _) = FixtureExamples("t5v11_tiny_gated");
        var config = new SftConfig { BatchSize = 2, Epochs = 10, SaveEvery = 0, Optimizer = new SftConfig().Optimizer with { LearningRate = 1e-2 } };
        var trainer = new Seq2SeqSftTrainer(model, config, padId: 0);
        double before = trainer.Evaluate(examples)["eval_loss"];
        double after = trainer.Train(examples, examples)["eval_loss"];
        Assert.True(after < before - 0.5, $"eval loss {before:F3} → {after:F3}");
    }
}
