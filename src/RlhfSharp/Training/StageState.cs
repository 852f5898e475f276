using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Distributed;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Training;

/// <summary>
/// The resumable state of one stage of a run, the last <see cref="KeepLast"/> checkpoints of it side by side:
/// <c>&lt;stage&gt;/state/step-00000040/</c> holds the weights of every module the stage trains, the optimizers
/// (moments, step, skipped-step counters), torch's global RNG state and <c>progress.json</c> (step, the trainer's
/// extra numbers such as the KL coefficient, and the size of every file, written last). A checkpoint is written into
/// a temporary folder, synced to the disk and renamed into place, so a kill at any instant leaves every
/// <c>step-*</c> folder whole; resume takes the newest one that checks out. The other RNGs (data order, sampling,
/// minibatch shuffles) are derived from the recipe's seed and the step, so the step restores them (docs/resume.md).
/// <c>done.json</c> marks a finished stage so a rerun skips it.
/// </summary>
public sealed class StageState(string stageDir, int keepLast = 2)
{
    public string Dir { get; } = stageDir;
    /// <summary>How many checkpoints stay on disk; older ones are deleted after each save (at least 1).</summary>
    public int KeepLast { get; } = Math.Max(1, keepLast);
    public string StateDir => Path.Combine(Dir, "state");
    string DoneFile => Path.Combine(Dir, "done.json");
    public string CheckpointDir => Path.Combine(Dir, "checkpoint");
    const string Progress = "progress.json", Rng = "torch_rng.bin";

    /// <summary>Whether the stage ends in a model checkpoint (the pipeline's feedback stage writes data instead).</summary>
    public bool HasCheckpoint { get; init; } = true;

    /// <summary>
    /// Whether the stage is finished: <c>done.json</c> written after its checkpoint. The one place the stage commands and
    /// <c>rlhf pipeline</c> decide it, so a folder whose checkpoint was removed trains again in both.
    /// </summary>
    public bool IsDone => File.Exists(DoneFile) && (!HasCheckpoint || Directory.Exists(CheckpointDir));

    /// <summary>The step of the newest whole checkpoint, or null when there is nothing to resume.</summary>
    public int? SavedStep => Newest()?.Step;

    /// <summary>The trainer's extra numbers of the newest checkpoint (e.g. <c>kl_coef</c>).</summary>
    public JsonObject? SavedExtra => Newest()?.Progress?["extra"] as JsonObject;

    /// <summary>Steps of the whole checkpoints on disk, oldest first.</summary>
    public IReadOnlyList<int> SavedSteps => Checkpoints().Where(c => c.Progress is not null).Select(c => c.Step).ToList();

    /// <summary>
    /// Writes a checkpoint at <paramref name="step"/> and drops those beyond <see cref="KeepLast"/>. A failed write
    /// (disk full, folder not writable) leaves the previous checkpoints untouched and says which one is intact.
    /// </summary>
    public void Save(int step, IReadOnlyDictionary<string, nn.Module> modules, IReadOnlyDictionary<string, Optimizer> optimizers, JsonObject? extra = null)
    {
        // ZeRO-1: each rank holds a slice of the moments; every rank takes part in gathering them to rank 0.
        var gathered = optimizers.ToDictionary(o => o.Key, o => o.Value.GatherState());
        if (!DataParallel.IsRoot) return; // under mpirun the ranks hold the same weights: rank 0 writes them
        string name = StepFolder(step);
        // Training is deterministic in the step (docs/resume.md), so a whole checkpoint of this step already holds this state.
        if (Checkpoints().Any(c => c.Step == step && c.Progress is not null)) return;
        string tmp = Path.Combine(StateDir, $".{name}.tmp-{Guid.NewGuid():N}");
        try
        {
            Directory.CreateDirectory(StateDir);
            RemoveLeftovers();
            Directory.CreateDirectory(tmp);
            foreach (var (module, m) in modules)
                SafeTensors.Save(Path.Combine(tmp, module + ".safetensors"), m.named_parameters().Select(p => new KeyValuePair<string, Tensor>(p.name, p.parameter)));
            foreach (var (module, optimizer) in optimizers) optimizer.Save(Path.Combine(tmp, module + ".optimizer.bin"), gathered[module]);
            using (var rng = torch.random.get_rng_state()) File.WriteAllBytes(Path.Combine(tmp, Rng), rng.data<byte>().ToArray());
            FaultInjection.InsideCheckpointWrite();
            var sizes = new JsonObject();
            foreach (var file in Directory.EnumerateFiles(tmp).Order(StringComparer.Ordinal)) sizes[Path.GetFileName(file)] = new FileInfo(file).Length;
            File.WriteAllText(Path.Combine(tmp, Progress), new JsonObject { ["step"] = step, ["extra"] = extra?.DeepClone(), ["files"] = sizes }.ToJsonString());
            Durable.SyncFolder(tmp);
            string target = Path.Combine(StateDir, name);
            Directory.Move(tmp, target);
            Durable.SyncDirectory(StateDir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
            string intact = SavedStep is int s ? $"the last good checkpoint (step {s}, {Path.Combine(StateDir, StepFolder(s))}) is intact" : "no earlier checkpoint exists";
            throw new RlhfException($"{StateDir}: could not write the checkpoint of step {step} ({e.Message}); the disk may be full or the folder not writable; {intact}.");
        }
        foreach (var old in Checkpoints().Where(c => c.Progress is not null).SkipLast(KeepLast)) Discard(old.Dir);
    }

    /// <summary>Restores the modules, optimizers and torch's RNG from the newest whole checkpoint.</summary>
    public void Load(IReadOnlyDictionary<string, nn.Module> modules, IReadOnlyDictionary<string, Optimizer> optimizers)
    {
        var newest = Newest() ?? throw new RlhfException($"{StateDir}: no checkpoint to resume from.");
        foreach (var (name, module) in modules)
        {
            string file = Path.Combine(newest.Dir, name + ".safetensors");
            if (!File.Exists(file)) throw new RlhfException($"{file}: missing: the saved state was written by another configuration (no '{name}' module).");
            var saved = SafeTensors.Load(file);
            using var _ = no_grad();
            foreach (var (pname, p) in module.named_parameters())
            {
                if (!saved.TryGetValue(pname, out var t)) throw new RlhfException($"{file}: missing '{pname}': the saved state belongs to another model.");
                if (!t.shape.SequenceEqual(p.shape))
                    throw new RlhfException($"{file}: '{pname}' has shape [{string.Join(", ", t.shape)}] but the model's is [{string.Join(", ", p.shape)}]: the saved state belongs to another model.");
                p.copy_(t);
            }
        }
        foreach (var (name, optimizer) in optimizers)
        {
            string file = Path.Combine(newest.Dir, name + ".optimizer.bin");
            try { optimizer.Load(file); }
            catch (Exception e) when (e is IOException or EndOfStreamException or ArgumentException or InvalidOperationException)
            {
                throw new RlhfException($"{file}: cannot restore the optimizer ({e.Message}): the saved state belongs to another configuration.");
            }
        }
        string rng = Path.Combine(newest.Dir, Rng);
        if (File.Exists(rng))
            using (var state = torch.tensor(File.ReadAllBytes(rng), ScalarType.Byte)) torch.random.set_rng_state(state);
    }

    /// <summary>Marks the stage finished (after its checkpoint is in place) and drops the resume state.</summary>
    public void MarkDone(IReadOnlyDictionary<string, double> summary)
    {
        if (!DataParallel.IsRoot) return;
        var o = new JsonObject();
        foreach (var (k, v) in summary) o[k] = double.IsFinite(v) ? v : null;
        Durable.WriteAllText(DoneFile, o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        if (Directory.Exists(StateDir)) Directory.Delete(StateDir, recursive: true);
    }

    public Dictionary<string, double> ReadDone() =>
        (JsonNode.Parse(File.ReadAllText(DoneFile)) as JsonObject)!.Where(kv => kv.Value is not null)
            .ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<double>());

    static string StepFolder(int step) => $"step-{step:D8}";

    sealed record Saved(string Dir, int Step, JsonObject? Progress);

    /// <summary>Every <c>step-*</c> folder, oldest first; <see cref="Saved.Progress"/> is null for one that does not check out.</summary>
    List<Saved> Checkpoints()
    {
        if (!Directory.Exists(StateDir)) return [];
        var found = new List<Saved>();
        foreach (var dir in Directory.EnumerateDirectories(StateDir, "step-*"))
            if (int.TryParse(Path.GetFileName(dir)["step-".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out int step))
                found.Add(new Saved(dir, step, Verified(dir, step)));
        return found.OrderBy(s => s.Step).ToList();
    }

    Saved? Newest() => Checkpoints().LastOrDefault(c => c.Progress is not null);

    /// <summary>progress.json, when it parses, names this step, and every file it lists has the size it recorded.</summary>
    static JsonObject? Verified(string dir, int step)
    {
        try
        {
            if (JsonNode.Parse(File.ReadAllText(Path.Combine(dir, Progress))) is not JsonObject p || p["step"]?.GetValue<int>() != step) return null;
            if (p["files"] is not JsonObject files) return null;
            foreach (var (file, size) in files)
            {
                var info = new FileInfo(Path.Combine(dir, file));
                if (!info.Exists || info.Length != size!.GetValue<long>()) return null;
            }
            return p;
        }
        catch (Exception e) when (e is IOException or JsonException or InvalidOperationException or FormatException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Temporary folders of killed writes and folders of killed deletions.</summary>
    void RemoveLeftovers()
    {
        foreach (var dir in Directory.EnumerateDirectories(StateDir, ".*")) Directory.Delete(dir, recursive: true);
        foreach (var bad in Checkpoints().Where(c => c.Progress is null)) Discard(bad.Dir);
    }

    /// <summary>Renames a folder out of the <c>step-*</c> namespace first, so a kill mid-delete leaves no half folder under a checkpoint's name.</summary>
    void Discard(string dir)
    {
        string trash = Path.Combine(StateDir, $".trash-{Guid.NewGuid():N}");
        Directory.Move(dir, trash);
        Directory.Delete(trash, recursive: true);
    }
}
