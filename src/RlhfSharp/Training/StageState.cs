using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Distributed;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Training;

/// <summary>
/// The resumable state of one stage of a run (<c>runs/&lt;name&gt;/&lt;stage&gt;/state/</c>): the weights of every
/// module it trains, the optimizer, the step and any extra numbers (a KL coefficient), written to a temporary
/// folder and renamed into place so a kill mid-write leaves the previous state whole. <c>done.json</c> marks a
/// finished stage so a rerun skips it.
/// </summary>
public sealed class StageState(string stageDir)
{
    public string Dir { get; } = stageDir;
    string StateDir => Path.Combine(Dir, "state");
    string DoneFile => Path.Combine(Dir, "done.json");
    public string CheckpointDir => Path.Combine(Dir, "checkpoint");

    public bool IsDone => File.Exists(DoneFile) && Directory.Exists(CheckpointDir);

    /// <summary>The step a previous run stopped at, or null when there is nothing to resume.</summary>
    public int? SavedStep => File.Exists(Path.Combine(StateDir, "progress.json"))
        ? JsonNode.Parse(File.ReadAllText(Path.Combine(StateDir, "progress.json")))!["step"]!.GetValue<int>()
        : null;

    public JsonObject? SavedExtra => File.Exists(Path.Combine(StateDir, "progress.json"))
        ? JsonNode.Parse(File.ReadAllText(Path.Combine(StateDir, "progress.json")))!["extra"] as JsonObject
        : null;

    public void Save(int step, IReadOnlyDictionary<string, nn.Module> modules, IReadOnlyDictionary<string, Optimizer> optimizers, JsonObject? extra = null)
    {
        if (!DataParallel.IsRoot) return; // under mpirun the ranks hold the same weights: rank 0 writes them
        Directory.CreateDirectory(Dir);
        string tmp = Path.Combine(Dir, $".state.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(tmp);
        foreach (var (name, module) in modules)
            SafeTensors.Save(Path.Combine(tmp, name + ".safetensors"), module.named_parameters().Select(p => new KeyValuePair<string, Tensor>(p.name, p.parameter)));
        foreach (var (name, optimizer) in optimizers) optimizer.Save(Path.Combine(tmp, name + ".optimizer.bin"));
        File.WriteAllText(Path.Combine(tmp, "progress.json"), new JsonObject { ["step"] = step, ["extra"] = extra?.DeepClone() }.ToJsonString());
        AtomicDirectory.Replace(tmp, StateDir);
    }

    public void Load(IReadOnlyDictionary<string, nn.Module> modules, IReadOnlyDictionary<string, Optimizer> optimizers)
    {
        foreach (var (name, module) in modules)
        {
            var saved = SafeTensors.Load(Path.Combine(StateDir, name + ".safetensors"));
            using var _ = no_grad();
            foreach (var (pname, p) in module.named_parameters())
            {
                if (!saved.TryGetValue(pname, out var t)) throw new RlhfException($"{StateDir}/{name}.safetensors: missing '{pname}': the saved state belongs to another model.");
                p.copy_(t);
            }
        }
        foreach (var (name, optimizer) in optimizers) optimizer.Load(Path.Combine(StateDir, name + ".optimizer.bin"));
    }

    /// <summary>Marks the stage finished (after its checkpoint is in place) and drops the resume state.</summary>
    public void MarkDone(IReadOnlyDictionary<string, double> summary)
    {
        if (!DataParallel.IsRoot) return;
        var o = new JsonObject();
        foreach (var (k, v) in summary) o[k] = double.IsFinite(v) ? v : null;
        File.WriteAllText(DoneFile + ".tmp", o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        File.Move(DoneFile + ".tmp", DoneFile, overwrite: true);
        if (Directory.Exists(StateDir)) Directory.Delete(StateDir, recursive: true);
    }

    public Dictionary<string, double> ReadDone() =>
        (JsonNode.Parse(File.ReadAllText(DoneFile)) as JsonObject)!.Where(kv => kv.Value is not null)
            .ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<double>());
}
