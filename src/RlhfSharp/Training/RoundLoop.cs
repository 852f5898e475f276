using static TorchSharp.torch;

namespace RlhfSharp.Training;

/// <summary>
/// The loop of the methods that train in rounds (rejection sampling, online DPO): each round samples with the current
/// policy and trains a fresh inner trainer on what it picked; after it, the policy is saved (<see cref="RoundCheckpoint"/>),
/// the round's row written and reported. The round supplies its body and fills the row (the loop puts <c>iteration</c>
/// first).
/// </summary>
public sealed class RoundLoop
{
    public required string Stage { get; init; }
    public required int Rounds { get; init; }
    public required nn.Module Policy { get; init; }
    public StageState? State { get; init; }
    public MetricsLog? Metrics { get; init; }
    public IProgress<TrainingProgress>? Progress { get; init; }

    /// <summary>Runs the rounds not done yet; returns the last round's row (empty when none ran).</summary>
    public Dictionary<string, double> Run(Action<int, Dictionary<string, double>> round, CancellationToken cancel)
    {
        var last = new Dictionary<string, double>();
        var checkpoint = new RoundCheckpoint(State, Policy);
        for (int r = checkpoint.Resume(); r < Rounds; r++)
        {
            cancel.ThrowIfCancellationRequested();
            var row = new Dictionary<string, double> { ["iteration"] = r + 1 };
            // The round's own training (SFT on the picks, DPO on the pairs) runs its steps without a metrics log: the round's row
            // carries the expert load of all of them.
            var expertLoad = Algorithms.Common.ExpertLoadLog.Begin(new Dictionary<string, nn.Module> { ["policy"] = Policy });
            round(r, row);
            expertLoad.WriteInto(row);
            last = row;
            checkpoint.Save(r + 1);
            Metrics?.Write(row);
            Progress?.Report(new TrainingProgress(Stage, r + 1, Rounds, row));
        }
        return last;
    }

    /// <summary>
    /// Runs rounds of the online methods that relabel their own samples (rejection sampling, online DPO): each round a
    /// seeded subset of <paramref name="perRound"/> prompts, <paramref name="sample"/> (the policy's samples judged; it
    /// writes its numbers into the row and returns what to train on), then <paramref name="train"/> on that (its numbers
    /// logged under <paramref name="trainPrefix"/>), with the time each half took. Round r's seeds derive from
    /// <paramref name="seed"/> + r, so a resumed run repeats the same rounds.
    /// </summary>
    public Dictionary<string, double> RunSampleAndTrain<T>(IReadOnlyList<int[]> prompts, int perRound, ulong seed,
        Func<List<int[]>, int, Dictionary<string, double>, T> sample, Func<T, int, Dictionary<string, double>> train, string trainPrefix,
        CancellationToken cancel) => Run((round, row) =>
    {
        var clock = Stopwatch.StartNew();
        var chosen = SeededOrder.Subset(prompts, perRound, seed + (ulong)round);
        var data = sample(chosen, round, row);
        double sampleSeconds = clock.Elapsed.TotalSeconds;
        var result = train(data, round);
        row["time_sample"] = sampleSeconds;
        row["time_train"] = clock.Elapsed.TotalSeconds - sampleSeconds;
        foreach (var (k, v) in result) row[trainPrefix + k] = v;
    }, cancel);
}
