using RlhfSharp.Checkpoints;
using RlhfSharp.Models;
using RlhfSharp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Checkpoints;

/// <summary>
/// A checkpoint save during training (issue #20) streams: the resumable state (weights, AdamW moments, generator) and the
/// stage's HF checkpoint raise the process's peak resident memory by a small fraction of the weights, never a copy.
/// </summary>
[Collection(ProcessWideStateCollection.Name)]
public sealed class SavePeakMemoryTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-savepeak-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static long Status(string key) =>
        long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith(key + ":")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;

    /// <summary>Resets VmHWM to the current RSS (Linux: writing 5 to clear_refs), so the next peak is this operation's.</summary>
    static long ResetPeak()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        File.WriteAllText("/proc/self/clear_refs", "5");
        return Status("VmHWM");
    }

    [SkippableFact]
    public void Saving_training_state_and_the_checkpoint_raises_the_peak_by_a_small_fraction_of_the_weights()
    {
        Skip.IfNot(File.Exists("/proc/self/clear_refs"), "needs Linux's /proc/self/clear_refs to reset the peak");
        var config = new TransformerConfig
        {
            ModelType = "llama", VocabSize = 8000, HiddenSize = 512, IntermediateSize = 1536, NumLayers = 6,
            NumHeads = 8, NumKvHeads = 4, MaxPositions = 256, BosTokenId = 1, EosTokenIds = [2],
        };
        using var model = new CausalLM(config);
        using var optimizer = new Optimizer(model.parameters(), new OptimizerConfig(), totalSteps: 10);
        using (var ids = tensor(new long[] { 1, 5, 9, 33, 2, 7 }, [1, 6]))
        using (var scope = NewDisposeScope())
        {
            model.Forward(ids).sum().backward(); // moments exist after a step, as in a mid-run save
            optimizer.Apply();
        }
        long weights = model.parameters().Sum(p => p.numel() * 4);
        var state = new StageState(Path.Combine(tmp, "stage"), keepLast: 1);

        long before = ResetPeak();
        state.Save(1, new Dictionary<string, nn.Module> { ["policy"] = model }, new Dictionary<string, Optimizer> { ["policy"] = optimizer });
        HuggingFaceCheckpoint.Save(model, Path.Combine(tmp, "checkpoint"));
        long rise = Status("VmHWM") - before;

        Assert.True(File.Exists(Path.Combine(tmp, "checkpoint", HuggingFaceCheckpoint.WeightsFile)));
        // AdamW's two moments make the live state 3 × the weights; a save that copied any of it would show here.
        Assert.True(rise < 0.25 * weights, $"saving {weights / 1e6:F0} MB of weights (+ moments) raised the peak by {rise / 1e6:F1} MB");
    }
}
