using RlhfSharp.Algorithms.ProcessReward;
using RlhfSharp.Data;
using RlhfSharp.Evaluation;
using RlhfSharp.Rewards;
using RlhfSharp.Tests.Tokenization;
using RlhfSharp.Tokenization;

namespace RlhfSharp.Tests.Rewards;

/// <summary>Process supervision: steps, TRL's tokenisation of step labels, aggregation, the stepwise file format and step accuracy.</summary>
public sealed class ProcessRewardStepsTests
{
    [Fact]
    public void Sentences_end_at_terminal_punctuation_before_whitespace_and_keep_a_trailing_fragment()
    {
        const string text = "Tom was sad. \"Why?\" asked Sue!  She smiled... Then they played";
        Assert.Equal(["Tom was sad.", "\"Why?\"", "asked Sue!", "She smiled...", "Then they played"], Sentences.Split(text));
        Assert.Empty(Sentences.Split("   "));
        // Spans index the original text, so a prefix through any sentence is a prefix of the story.
        var spans = Sentences.Spans(text);
        Assert.Equal("Tom was sad. \"Why?\"", text[..(spans[1].Start + spans[1].Length)]);
    }

    [Fact]
    public void Labels_sit_on_the_last_separator_token_of_each_step_as_trl_tokenize_row()
    {
        using var files = new RealTokenizerFiles();
        var tokenizer = TokenizerLoader.Load(files.Folder("gpt2"));
        // TRL's docstring example (prm_trainer.py tokenize_row), here with GPT-2's vocabulary, where "\n" is id 198.
        var c = new StepwiseCompletion("Which number is larger, 9.8 or 9.11?", ["11 is greater than 8.", "Hence, 9.11 > 9.8."], [1, 0]);
        var e = ProcessRewardExample.Create(tokenizer, c, "\n", maxLength: 1024, addBos: false);
        int prompt = tokenizer.Encode(c.Prompt).Length, step1 = tokenizer.Encode(c.Steps[0]).Length, step2 = tokenizer.Encode(c.Steps[1]).Length;
        Assert.Equal(prompt + step1 + 1 + step2 + 1, e.InputIds.Length);
        Assert.Equal(198, e.InputIds[prompt + step1]);
        Assert.Equal(198, e.InputIds[^1]);
        var labelled = Enumerable.Range(0, e.Labels.Length).Where(i => e.Labels[i] != ProcessRewardLoss.Ignore).ToArray();
        Assert.Equal([prompt + step1, prompt + step1 + 1 + step2], labelled);
        Assert.Equal([1f, 0f], labelled.Select(i => e.Labels[i]));
        // train_on_last_step_only keeps the last label alone; max_length cuts the tail (labels with it).
        var last = ProcessRewardExample.Create(tokenizer, c, "\n", 1024, addBos: false, lastStepOnly: true);
        Assert.Single(last.Labels, l => l != ProcessRewardLoss.Ignore);
        Assert.Equal(0f, last.Labels[^1]);
        var cut = ProcessRewardExample.Create(tokenizer, c, "\n", prompt + step1 + 1, addBos: false);
        Assert.Equal(prompt + step1 + 1, cut.InputIds.Length);
        Assert.Equal(1f, cut.Labels[^1]);
    }

    [Theory]
    [InlineData(StepAggregation.Min, 0.2)]
    [InlineData(StepAggregation.Product, 0.9 * 0.2 * 0.5)]
    [InlineData(StepAggregation.Last, 0.5)]
    public void Step_scores_aggregate_by_min_product_or_last(StepAggregation aggregation, double expected)
    {
        Assert.Equal(expected, ProcessRewardModel.Aggregate([0.9, 0.2, 0.5], aggregation), 1e-12);
        Assert.Equal(0.0, ProcessRewardModel.Aggregate([], aggregation));
    }

    [Fact]
    public void Stepwise_rows_read_booleans_prm800k_ratings_and_soft_labels_and_name_the_bad_line()
    {
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "steps.jsonl");
        File.WriteAllLines(path, [
            """{"prompt": "p", "completions": ["a", "b"], "labels": [true, false]}""",
            """{"prompt": "q", "completions": ["a", "b", "c"], "labels": [1, 0, -1]}""",
            """{"prompt": "r", "completions": ["a"], "labels": [0.25]}""",
        ]);
        var rows = DatasetLoader.LoadStepwise(path).Records;
        Assert.Equal([1.0, 0.0], rows[0].Labels);
        Assert.Equal([1.0, 0.0, 0.0], rows[1].Labels); // TRL prm800k.py: a step is good when its rating is 1
        Assert.Equal([0.25], rows[2].Labels);
        File.AppendAllLines(path, ["""{"prompt": "s", "completions": ["a", "b"], "labels": [1]}"""]);
        var e = Assert.Throws<RlhfException>(() => DatasetLoader.LoadStepwise(path));
        Assert.Contains("steps.jsonl:4", e.Message);
        Assert.Contains("1 labels for 2 steps", e.Message);
    }

    [Fact]
    public void RewardBench_rows_keep_their_subset_column()
    {
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "rb.jsonl");
        File.WriteAllLines(path, [
            """{"prompt": "p", "chosen": "a", "rejected": "b", "subset": "chat-hard"}""",
            """{"prompt": "p", "chosen": "a", "rejected": "b"}""",
        ]);
        var rows = DatasetLoader.LoadRankings(path).Records;
        Assert.Equal("chat-hard", rows[0].Subset);
        Assert.Null(rows[1].Subset);
    }

    [Fact]
    public void Step_accuracy_thresholds_both_score_and_label_at_one_half()
    {
        // Hand count: steps (0.8,1)✓ (0.3,0)✓ (0.6,0)✗ | (0.4,1)✗ (0.9,1)✓ → 3/5. Good steps: 0.8, 0.4, 0.9 → mean 0.7; bad: 0.3, 0.6 → 0.45.
        // Solutions: first has a bad label and min 0.3 < 0.5 → right; second all good but min 0.4 → wrong; third truncated → not counted.
        var r = ProcessRewardAccuracy.Compute([[0.8, 0.3, 0.6], [0.4, 0.9], []], [[1, 0, 0], [1, 1], [1]]);
        Assert.Equal(5, r.Steps);
        Assert.Equal(0.6, r.StepAccuracy, 1e-12);
        Assert.Equal(0.7, r.MeanGoodScore, 1e-12);
        Assert.Equal(0.45, r.MeanBadScore, 1e-12);
        Assert.Equal(2, r.Solutions);
        Assert.Equal(0.5, r.SolutionAccuracy, 1e-12);
    }
}
