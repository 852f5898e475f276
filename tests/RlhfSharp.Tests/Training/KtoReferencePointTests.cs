using System.Text.Json;
using RlhfSharp.Algorithms.Preference;
using RlhfSharp.Data;

namespace RlhfSharp.Tests.Training;

/// <summary>
/// KTO's reference point z₀ is the KL on mismatched (prompt, completion) pairs. Unpaired preference data (data_utils
/// _unpair_row: all chosen, then all rejected) shuffled with the seed as TRL's KTOTrainer did up to v0.11, and partners
/// rotated within each batch (kto_trainer _get_kl_dataset), never pair a prompt with its own other answer, and the
/// batches mix desirable and undesirable completions.
/// </summary>
public sealed class KtoReferencePointTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-kto-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static int[] Prompts(IReadOnlyList<LabeledCompletion> examples) =>
        examples.Select(e => examples.Select(x => x.Prompt).ToList().IndexOf(e.Prompt)).ToArray();

    /// <summary>The trainer's order (the seeded shuffle) and its KL partners: no pair shares a prompt.</summary>
    static void AssertNoKlPairSharesAPrompt(IReadOnlyList<LabeledCompletion> unpaired, int batchSize, ulong seed = 42)
    {
        var examples = PreferenceTrainer.KtoOrder(unpaired, seed);
        var partners = PreferenceTrainer.KlPartners(Prompts(examples), batchSize);
        for (int i = 0; i < examples.Count; i++)
            Assert.True(examples[i].Prompt != examples[partners[i]].Prompt,
                $"batch size {batchSize}, seed {seed}: example {i} ({(examples[i].Label ? "chosen" : "rejected")}) is paired with example {partners[i]} of the same prompt");
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
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
        for (ulong seed = 0; seed < 50; seed++) AssertNoKlPairSharesAPrompt(LabeledCompletion.Unpair(pairs), batchSize, seed);
    }

    [Fact]
    public void Batches_of_the_shuffled_order_mix_desirable_and_undesirable_completions()
    {
        // TRL (≤ v0.11) shuffles the unpaired set, then reads it in batches: a batch of 8 from 40 desirable and 40
        // undesirable completions holds a hypergeometric number of desirable ones, and holds one label only with
        // probability 2·C(40,8)/C(80,8) = 0.0053; so 10 batches hold both labels all but ~0.05 times on average, and two
        // or more single-label batches come with probability 0.0012. Unshuffled (all desirable first), none would mix.
        var pairs = Enumerable.Range(0, 40).Select(i => new Preference($"Once {i}", $" best {i}", $" worst {i}")).ToList();
        var examples = PreferenceTrainer.KtoOrder(LabeledCompletion.Unpair(pairs), 42);
        Assert.Equal(80, examples.Count);
        Assert.Equal(80, examples.Distinct().Count()); // a permutation: every example once
        var desirablePerBatch = examples.Chunk(8).Select(b => b.Count(e => e.Label)).ToList();
        Assert.True(desirablePerBatch.Count(d => d is > 0 and < 8) >= 9, "desirable per batch: " + string.Join(" ", desirablePerBatch));
    }

    [Fact]
    public void A_batch_holding_both_answers_of_a_prompt_pairs_each_with_another_prompts_completion()
    {
        // Rotation by one would pair example 1 with example 0, the same prompt. Inside the batch the KL completions stay
        // the batch's own (a permutation); a batch of two answers of one prompt must look outside itself.
        var inBatch = PreferenceTrainer.KlPartners([0, 0, 1, 1], 4);
        Assert.Equal([0, 1, 2, 3], inBatch.Order());
        int[] prompts = [0, 0, 1, 1, 2, 3, 2, 4, 4];
        foreach (int batchSize in new[] { 2, 3, 4, 9 })
        {
            var partners = PreferenceTrainer.KlPartners(prompts, batchSize);
            for (int i = 0; i < prompts.Length; i++) Assert.NotEqual(prompts[i], prompts[partners[i]]);
        }
        for (int i = 0; i < 4; i++) Assert.NotEqual(i / 2, inBatch[i] / 2);
        Assert.Equal([3, 0, 1, 2, 5, 4], PreferenceTrainer.KlPartners([0, 1, 2, 3, 4, 5], 4)); // distinct prompts: TRL's shift by one
    }
}
