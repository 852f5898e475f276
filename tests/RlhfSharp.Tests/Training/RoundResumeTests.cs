using RlhfSharp.Algorithms.OnlineDpo;
using RlhfSharp.Algorithms.Preference;
using RlhfSharp.Algorithms.RejectionSampling;
using RlhfSharp.Algorithms.Sft;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Training;

/// <summary>
/// Rejection sampling and online DPO save the policy after every round: a run stopped between rounds resumes at the
/// next one and ends with exactly the weights of a run that was never stopped.
/// </summary>
public sealed class RoundResumeTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-rounds-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static readonly int[][] Prompts = Enumerable.Range(0, 16).Select(i => (int[])[1, 403 + i % 5]).ToArray();
    static readonly OptimizerConfig Fast = new() { LearningRate = 2e-3, WarmupRatio = 0, Schedule = ScheduleKind.Constant };

    static Tensor Score(SampleBatch b)
    {
        var response = b.Sequences.narrow(1, b.PromptLength, b.ResponseMask.shape[1]);
        return (response.eq(261).to(float32) * b.ResponseMask).sum(1) / b.ResponseMask.sum(1).clamp_min(1);
    }

    static CausalLM Stories() => Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);

    static float[] Weights(CausalLM m) =>
        m.named_parameters().SelectMany(p => p.parameter.detach().cpu().data<float>().ToArray()).ToArray();

    /// <summary>Runs <paramref name="train"/> once straight through, once cancelled after round 1 and resumed; returns both weights and the resumed run's rows.</summary>
    (float[] Straight, float[] Resumed, int Rows) RunBothWays(string name, Func<CausalLM, MetricsLog, IProgress<TrainingProgress>?, StageState?, CancellationToken, Dictionary<string, double>> train)
    {
        using var straight = Stories();
        train(straight, new MetricsLog(null), null, null, default);

        var state = new StageState(Path.Combine(tmp, name));
        using (var stopped = Stories())
        {
            using var cancel = new CancellationTokenSource();
            var progress = new ProgressOf(p => { if (p.Step == 1) cancel.Cancel(); });
            Assert.ThrowsAny<OperationCanceledException>(() => train(stopped, new MetricsLog(null), progress, state, cancel.Token));
        }
        Assert.Equal(1, state.SavedStep);
        using var resumed = Stories(); // fresh base weights: everything must come from the saved state
        var log = new MetricsLog(null);
        train(resumed, log, null, state, default);
        return (Weights(straight), Weights(resumed), log.Rows.Count);
    }

    [Fact]
    public void Rejection_sampling_resumed_after_a_stop_ends_bit_identical_to_an_uninterrupted_run()
    {
        var config = new RejectionSamplingConfig
        {
            Iterations = 3, PromptsPerIteration = 8, SamplesPerPrompt = 4, MaxNewTokens = 12,
            Sft = new SftConfig { Epochs = 1, BatchSize = 8, Optimizer = Fast },
        };
        var (straight, resumed, rows) = RunBothWays("rs", (policy, log, progress, state, cancel) =>
            new RejectionSamplingTrainer(policy, Score, new Sampler(policy) { EosIds = [2], PadId = 0 }, 0, 2, config) { Metrics = log, Progress = progress }
                .Train(Prompts, state, cancel));
        Assert.Equal(2, rows); // rounds 2 and 3 only
        Assert.Equal(straight, resumed);
        using (var untrained = Stories()) Assert.NotEqual(Weights(untrained), straight);
    }

    [Fact]
    public void Online_dpo_resumed_after_a_stop_ends_bit_identical_to_an_uninterrupted_run()
    {
        var config = new OnlineDpoConfig
        {
            Iterations = 3, PromptsPerIteration = 8, MaxNewTokens = 12, Temperature = 1.0,
            Dpo = new DpoConfig { Epochs = 1, BatchSize = 4, Optimizer = Fast },
        };
        var (straight, resumed, rows) = RunBothWays("online_dpo", (policy, log, progress, state, cancel) =>
        {
            using var reference = Stories();
            return new OnlineDpoTrainer(policy, reference, Score, new Sampler(policy) { EosIds = [2], PadId = 0 }, 0, config) { Metrics = log, Progress = progress }
                .Train(Prompts, state, cancel);
        });
        Assert.Equal(2, rows);
        Assert.Equal(straight, resumed);
        using (var untrained = Stories()) Assert.NotEqual(Weights(untrained), straight);
    }

    sealed class ProgressOf(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
