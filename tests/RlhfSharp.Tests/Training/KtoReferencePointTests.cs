using System.Text.Json;
using RlhfSharp.Algorithms.Preference;
using RlhfSharp.Data;

namespace RlhfSharp.Tests.Training;

/// <summary>
/// KTO's reference point z₀ is the KL on mismatched (prompt, completion) pairs. Unpaired preference data in TRL's order
/// (data_utils._unpair_row: all chosen, then all rejected) and partners rotated within each batch (kto_trainer
/// _get_kl_dataset) never pair a prompt with its own other answer.
/// </summary>
public sealed class KtoReferencePointTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-kto-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static void AssertNoKlPairSharesAPrompt(IReadOnlyList<LabeledCompletion> examples, int batchSize)
    {
        var partners = PreferenceTrainer.KlPartners(examples.Count, batchSize);
        for (int i = 0; i < examples.Count; i++)
            Assert.True(examples[i].Prompt != examples[partners[i]].Prompt,
                $"batch size {batchSize}: example {i} ({(examples[i].Label ? "chosen" : "rejected")}) is paired with example {partners[i]} of the same prompt");
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(16)]
    public void Kl_pairs_of_a_preference_file_never_share_a_prompt(int batchSize)
    {
        string path = Path.Combine(tmp, "pairs.jsonl");
        File.WriteAllLines(path, Enumerable.Range(0, 12).Select(i =>
            JsonSerializer.Serialize(new { prompt = $"Story {i}:", chosen = $" kind {i}", rejected = $" mean {i}" })));
        var examples = DatasetLoader.LoadLabeled(path).Records;
        Assert.Equal(24, examples.Count);
        AssertNoKlPairSharesAPrompt(examples, batchSize);
        Assert.Equal(12, examples.TakeWhile(e => e.Label).Count()); // TRL's order: every chosen, then every rejected
    }

    [Theory]
    [InlineData(4)]
    [InlineData(16)]
    public void Kl_pairs_of_the_pipelines_best_and_worst_never_share_a_prompt(int batchSize)
    {
        var pairs = Enumerable.Range(0, 40).Select(i => new Preference($"Once {i}", $" best {i}", $" worst {i}")).ToList();
        AssertNoKlPairSharesAPrompt(LabeledCompletion.Unpair(pairs), batchSize);
    }
}
