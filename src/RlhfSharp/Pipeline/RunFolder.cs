using System.Text.Json;
using RlhfSharp.Checkpoints;
using RlhfSharp.Recipes;

namespace RlhfSharp.Pipeline;

/// <summary>
/// The rules of a pipeline run folder, checked before anything is written: a run folder is one whose
/// <c>config.json</c> is a resolved <see cref="PipelineConfig"/> written by <c>rlhf pipeline</c>. A folder holding
/// anything else (a Hugging Face model folder, a user's own <c>config.json</c>) is never written into; a resumed run
/// must use the recipe it started with, so <c>config.json</c> and the report never claim settings that did not run
/// (the same rule as the stage commands' <c>recipe.json</c>, docs/resume.md).
/// </summary>
public static class RunFolder
{
    /// <summary>The keys a resumed run may change: <c>algos</c> adds methods trained from the same SFT model and RM.</summary>
    static readonly string[] MayChange = ["algos"];

    /// <summary>
    /// Refuses, with the folder and the reason named, a run that must not start in <paramref name="dir"/>. Writes nothing.
    /// <paramref name="resume"/>: null when the caller does not say (a library call: an existing run is continued).
    /// </summary>
    public static void Check(string dir, PipelineConfig config, bool? resume = null)
    {
        if (File.Exists(dir)) throw new RlhfException($"{dir} is a file, not a folder: give --out a folder for the run.");
        bool exists = Directory.Exists(dir), empty = !exists || !Directory.EnumerateFileSystemEntries(dir).Any();
        if (resume == true && !exists) throw new RlhfException($"{dir} does not exist: there is no run to resume; drop --resume to start one there.");
        if (empty) return;
        string configFile = Path.Combine(dir, "config.json");
        if (!File.Exists(configFile))
            throw new RlhfException($"{dir} is not a run folder (it holds files but no config.json written by rlhf pipeline): choose another --out.");
        string saved = File.ReadAllText(configFile);
        if (!IsPipelineConfig(saved))
            throw new RlhfException($"{configFile} was not written by rlhf pipeline (a model folder or another file): it is left untouched; choose another --out.");
        if (resume == false) throw new RlhfException($"{dir} already holds a run: pass --resume to continue it, or --out to start another.");
        if (Recipe.FirstDifference(Without(saved), Without(Recipe.Serialize(config))) is string key)
            throw new RlhfException($"{configFile}: the run was started with a different '{key}': resume with the same recipe and --set values (a resumed run must repeat the uninterrupted one), or start a new --out.");
    }

    /// <summary>Writes the resolved config once the run is under way (after <see cref="Check"/> and loading the model).</summary>
    public static void WriteConfig(string dir, PipelineConfig config)
    {
        Directory.CreateDirectory(dir);
        Durable.WriteAllText(Path.Combine(dir, "config.json"), Recipe.Serialize(config));
    }

    /// <summary>
    /// After a start that failed before any stage left anything: removes the <c>config.json</c> it wrote and the folder when it
    /// is then empty, so the corrected command is not refused with "already holds a run". Anything else is left alone.
    /// </summary>
    public static void RemoveIfUnstarted(string dir)
    {
        if (!Directory.Exists(dir)) return;
        var entries = Directory.EnumerateFileSystemEntries(dir).ToList();
        if (entries.Count != 1 || Path.GetFileName(entries[0]) != "config.json" || !IsPipelineConfig(File.ReadAllText(entries[0]))) return;
        File.Delete(entries[0]);
        Directory.Delete(dir);
    }

    static bool IsPipelineConfig(string json)
    {
        try { return JsonSerializer.Deserialize<PipelineConfig>(json, Recipe.Json) is not null; }
        catch (JsonException) { return false; }
    }

    static string Without(string json)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(json)!.AsObject();
        foreach (var key in MayChange) node.Remove(key);
        return node.ToJsonString();
    }
}
