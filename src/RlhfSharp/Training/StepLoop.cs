using System.Text.Json.Nodes;
using RlhfSharp.Distributed;
using static TorchSharp.torch;

namespace RlhfSharp.Training;

/// <summary>
/// The one step loop every trained stage runs on (SFT, RM, the preference family, the group-RL family, PPO): resume
/// from the stage's newest checkpoint, then for each step a cancel check (every rank agrees; the state is saved before
/// stopping), the algorithm's step, the eval at each epoch's end, the metrics row, the progress report and the
/// checkpoint every <see cref="SaveEvery"/> steps. The algorithm supplies only its step, which fills the row (the loop
/// puts <c>step</c> first). Rejection sampling and online DPO train in rounds on <see cref="RoundCheckpoint"/> instead.
/// </summary>
/// <remarks>
/// The order of the work is the one every trainer had before (docs/resume.md relies on it): the cancel check comes
/// before a step's first random draw, and a checkpoint is taken after the step's row is written, so a resumed run
/// repeats the uninterrupted one bit for bit.
/// </remarks>
public sealed class StepLoop
{
    /// <summary>The stage's name in progress reports (<c>sft</c>, <c>rm</c>, <c>dpo</c>, <c>grpo</c>, …).</summary>
    public required string Stage { get; init; }
    public required int TotalSteps { get; init; }
    /// <summary>What a checkpoint holds: every module the stage trains and its optimizers, by file name.</summary>
    public required IReadOnlyDictionary<string, nn.Module> Modules { get; init; }
    public required IReadOnlyDictionary<string, Optimizer> Optimizers { get; init; }
    public StageState? State { get; init; }
    /// <summary>Steps between checkpoints (0: only on cancel); the last step is not saved (the stage's checkpoint follows).</summary>
    public int SaveEvery { get; init; }
    public MetricsLog? Metrics { get; init; }
    public IProgress<TrainingProgress>? Progress { get; init; }
    /// <summary>The trainer's numbers a checkpoint keeps besides weights and optimizers (PPO's KL coefficient).</summary>
    public Func<JsonObject>? SaveExtra { get; init; }
    /// <summary>Restores <see cref="SaveExtra"/>'s numbers on resume.</summary>
    public Action<JsonObject?>? RestoreExtra { get; init; }
    /// <summary>Held-out numbers added to the row of each epoch's last step and of the last step.</summary>
    public Func<Dictionary<string, double>>? Evaluate { get; init; }
    public int StepsPerEpoch { get; init; } = 1;

    /// <summary>Runs the steps not done yet; returns the last step's row (empty when none ran).</summary>
    /// <param name="step">The algorithm's step <c>s</c> (0-based): trains and adds its diagnostics to the row.</param>
    public Dictionary<string, double> Run(Action<int, Dictionary<string, double>> step, CancellationToken cancel)
    {
        int start = 0;
        if (State?.SavedStep is int saved)
        {
            State.Load(Modules, Optimizers);
            RestoreExtra?.Invoke(State.SavedExtra);
            start = saved;
        }
        var last = new Dictionary<string, double>();
        for (int s = start; s < TotalSteps; s++)
        {
            if (DataParallel.AnyCancelled(cancel))
            {
                State?.Save(s, Modules, Optimizers, SaveExtra?.Invoke());
                throw new OperationCanceledException(cancel);
            }
            var row = new Dictionary<string, double> { ["step"] = s + 1 };
            var expertLoad = Algorithms.Common.ExpertLoadLog.Begin(Modules); // mixtures of experts: collapse shows
            step(s, row);
            expertLoad.WriteInto(row);
            // ZeRO-1 only (other rows stay as they were): rank 0's share of the AdamW moments, so a run shows them sharded.
            foreach (var (name, optimizer) in Optimizers)
                if (optimizer.Config.ZeroStage == 1) row[$"optimizer_state_mb_{name}"] = optimizer.StateBytes / 1048576.0;
            if (Evaluate is not null && ((s + 1) % StepsPerEpoch == 0 || s + 1 == TotalSteps))
                foreach (var (k, v) in Evaluate()) row[k] = v;
            Metrics?.Write(row);
            Progress?.Report(new TrainingProgress(Stage, s + 1, TotalSteps, row));
            last = row;
            if (State is not null && SaveEvery > 0 && (s + 1) % SaveEvery == 0 && s + 1 < TotalSteps)
                State.Save(s + 1, Modules, Optimizers, SaveExtra?.Invoke());
        }
        return last;
    }
}
