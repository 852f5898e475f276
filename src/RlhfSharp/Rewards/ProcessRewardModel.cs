using System.Text.Json.Nodes;
using RlhfSharp.Algorithms.ProcessReward;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Models;
using RlhfSharp.Tokenization;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Rewards;

/// <summary>How a process reward model cuts a completion into steps.</summary>
public enum StepSplit
{
    /// <summary>At the separator it was trained with (TRL's <c>step_separator</c>, "\n" by default).</summary>
    Separator,
    /// <summary>Into sentences (<see cref="Sentences"/>): the built-in task's steps.</summary>
    Sentences,
}

/// <summary>
/// A trained process reward model as an <see cref="IRewardFunction"/>: the completion cut into steps, tokenised as in
/// training (<see cref="ProcessRewardExample"/>), P(good) read at each step's last separator token, the step scores
/// aggregated (<see cref="StepAggregation"/>). Used for best-of-n, as a reward source of the online stages, and by
/// <c>rlhf eval --prm</c>. Its step settings live in <c>prm.json</c> next to the weights (<see cref="SettingsFile"/>).
/// </summary>
public sealed class ProcessRewardModel(ScoreModel model, ITokenizer tokenizer, bool addBos, string separator, StepSplit split,
    StepAggregation aggregation = StepAggregation.Min, int maxLength = 1024, int batchSize = 16) : IRewardFunction, IDisposable
{
    /// <summary>The file beside the checkpoint that names the separator and how completions are cut into steps.</summary>
    public const string SettingsFile = "prm.json";

    public string Name => $"prm_{aggregation.ToString().ToLowerInvariant()}";
    public ScoreModel Model => model;
    public StepAggregation Aggregation => aggregation;

    /// <summary>A PRM folder written by <c>rlhf prm</c> (or the pipeline's prm stage), scored with <paramref name="aggregation"/>.</summary>
    public static ProcessRewardModel Load(string dir, StepAggregation aggregation, ScalarType dtype = ScalarType.Float32)
    {
        string settings = Path.Combine(dir, SettingsFile);
        if (!File.Exists(settings)) throw new RlhfException($"{settings} not found: a process reward model folder is written by 'rlhf prm'.");
        var json = JsonNode.Parse(File.ReadAllText(settings)) as JsonObject ?? throw new RlhfException($"{settings}: not a JSON object.");
        string separator = json["step_separator"]?.GetValue<string>() ?? throw new RlhfException($"{settings}: missing \"step_separator\".");
        var split = json["steps"]?.GetValue<string>() switch
        {
            "separator" or null => StepSplit.Separator,
            "sentences" => StepSplit.Sentences,
            var other => throw new RlhfException($"{settings}: \"steps\" is '{other}', expected separator or sentences."),
        };
        int maxLength = json["max_length"]?.GetValue<int>() ?? 1024;
        var model = HuggingFaceCheckpoint.LoadScoreModel(dir, dtype);
        if (model.Config.NumLabels != 2) { model.Dispose(); throw new RlhfException($"{dir}: a process reward model has 2 labels, this has {model.Config.NumLabels}."); }
        var tokenizer = TokenizerLoader.Load(dir);
        return new ProcessRewardModel(model, tokenizer, Evaluation.RewardModelScores.AddsBos(tokenizer, model.Config), separator, split, aggregation, maxLength);
    }

    /// <summary>Writes <see cref="SettingsFile"/> into a PRM checkpoint folder.</summary>
    public static void WriteSettings(string dir, string separator, StepSplit split, int maxLength) =>
        Durable.WriteAllText(Path.Combine(dir, SettingsFile), new JsonObject
        {
            ["step_separator"] = separator, ["steps"] = split == StepSplit.Sentences ? "sentences" : "separator", ["max_length"] = maxLength,
        }.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));

    /// <summary>The steps of a completion.</summary>
    public List<string> Steps(string completion) => split == StepSplit.Sentences
        ? Sentences.Split(completion)
        : completion.Split(separator).Where(s => s.Trim().Length > 0).ToList();

    public double[] Score(IReadOnlyList<string> prompts, IReadOnlyList<string> completions) =>
        StepScores(prompts, completions).Select(s => Aggregate(s, aggregation)).ToArray();

    /// <summary>One score from step scores; a completion without steps scores 0.</summary>
    public static double Aggregate(double[] steps, StepAggregation aggregation) => steps.Length == 0 ? 0 : aggregation switch
    {
        StepAggregation.Min => steps.Min(),
        StepAggregation.Product => steps.Aggregate(1.0, (a, b) => a * b),
        StepAggregation.Last => steps[^1],
        _ => throw new ArgumentOutOfRangeException(nameof(aggregation)),
    };

    /// <summary>P(good) of each step of each completion (steps cut off by the maximum length are left out).</summary>
    public double[][] StepScores(IReadOnlyList<string> prompts, IReadOnlyList<string> completions)
    {
        Check.SameCount(prompts, completions);
        return StepScores(prompts.Select((p, i) => Steps(completions[i]) is var steps ? new StepwiseCompletion(p, steps, steps.Select(_ => 1.0).ToList()) : null!).ToList());
    }

    /// <summary>P(good) of each given step (the labels are not read).</summary>
    public double[][] StepScores(IReadOnlyList<StepwiseCompletion> completions)
    {
        var examples = completions.Select(c => ProcessRewardExample.Create(tokenizer, c with { Labels = c.Steps.Select(_ => 1.0).ToList() }, separator, maxLength, addBos)).ToList();
        var device = model.model.Embeddings.weight!.device;
        int pad = tokenizer.PadId ?? tokenizer.EosId ?? 0;
        var result = new double[examples.Count][];
        using var _ = no_grad();
        for (int start = 0; start < examples.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var chunk = examples.Skip(start).Take(batchSize).ToList();
            var batch = TokenBatch.RightPad(chunk.Select(e => e.InputIds).ToList(), pad, device);
            var good = ProcessRewardLoss.GoodProbability(model.TokenScores(batch.Ids, batch.AttentionMask, Transformer.PositionsFromMask(batch.AttentionMask)));
            var values = good.cpu().data<float>().ToArray();
            long t = batch.Ids.shape[1];
            for (int i = 0; i < chunk.Count; i++)
            {
                var labels = chunk[i].Labels;
                result[start + i] = Enumerable.Range(0, labels.Length).Where(j => labels[j] != ProcessRewardLoss.Ignore).Select(j => (double)values[i * t + j]).ToArray();
            }
        }
        return result;
    }

    public void Dispose() => model.Dispose();
}
