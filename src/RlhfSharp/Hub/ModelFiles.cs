using System.Text.Json;
using System.Text.Json.Nodes;

namespace RlhfSharp.Hub;

/// <summary>
/// Which files of a model repository loading needs, as transformers' <c>from_pretrained</c> fetches them (v4.44
/// <c>modeling_utils.py</c>, <c>configuration_utils.py</c>, <c>tokenization_utils_base.py</c>): the config, the
/// safetensors weights (one file, or the index and the shards its weight_map names), the generation config and the
/// tokenizer files; for a PEFT adapter repository its adapter config and weights. Other weight formats (PyTorch
/// pickles, ONNX, GGUF) and subfolders are never fetched.
/// </summary>
public static class ModelFiles
{
    /// <summary>The single-file weights.</summary>
    public const string Weights = "model.safetensors";
    /// <summary>The index of sharded weights (transformers <c>SAFE_WEIGHTS_INDEX_NAME</c>).</summary>
    public const string WeightsIndex = "model.safetensors.index.json";
    /// <summary>A PEFT adapter's weights.</summary>
    public const string AdapterWeights = "adapter_model.safetensors";

    /// <summary>Fetched when the repository has them (transformers' tokenizer VOCAB_FILES_NAMES and the optional configs).</summary>
    public static IReadOnlyList<string> Optional { get; } =
    [
        "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
        "tokenizer.model", "vocab.json", "merges.txt", "chat_template.jinja", "chat_template.json", "adapter_config.json",
        "reward_normalization.json", "spiece.model",
    ];

    static readonly string[] TokenizerFiles = ["tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model"];

    /// <summary>The files to fetch from a repository listing <paramref name="files"/> (shards come later, from the index).</summary>
    /// <exception cref="RlhfException">No config or no safetensors weights.</exception>
    public static IReadOnlyList<string> Select(HubRepo repo, IReadOnlyList<string> files)
    {
        var present = files.ToHashSet(StringComparer.Ordinal);
        bool adapter = present.Contains("adapter_config.json");
        if (!present.Contains("config.json") && !adapter)
            throw new RlhfException($"{repo}: the repository has no config.json: it is not a transformers model (files: {Preview(files)}).");
        string? weights = present.Contains(WeightsIndex) ? WeightsIndex : present.Contains(Weights) ? Weights : adapter && present.Contains(AdapterWeights) ? AdapterWeights : null;
        if (weights is null)
        {
            string? other = files.FirstOrDefault(f => !f.Contains('/') && (f.EndsWith(".bin") || f.EndsWith(".pt") || f.EndsWith(".pth") || f.EndsWith(".gguf")));
            throw new RlhfException(other is null
                ? $"{repo}: the repository has no {Weights} or {WeightsIndex} (files: {Preview(files)})."
                : $"{repo}: the repository has its weights only as {other}; RlhfSharp reads safetensors. Use a revision with {Weights} (the Hub's safetensors conversion bot opens one as a pull request: --model {repo.Id}@refs/pr/N).");
        }
        return [.. new[] { "config.json" }.Where(present.Contains), .. Optional.Where(present.Contains), weights];
    }

    /// <summary>The shard files an index's weight_map names, each once, in first-seen order.</summary>
    /// <exception cref="RlhfException">The index is not valid JSON or has no weight_map.</exception>
    public static IReadOnlyList<string> Shards(string indexPath)
    {
        try
        {
            if (JsonNode.Parse(File.ReadAllText(indexPath))?["weight_map"] is JsonObject map)
                return map.Select(kv => kv.Value?.GetValue<string>()).OfType<string>().Distinct().ToList();
        }
        catch (JsonException e) { throw new RlhfException($"{indexPath}: not valid JSON ({e.Message})."); }
        throw new RlhfException($"{indexPath}: no \"weight_map\" object.");
    }

    /// <summary>
    /// What a snapshot folder lacks to be loaded: the config, the weights (every shard of an index) and a tokenizer
    /// (unless the Hub said the repository has none). Empty when it is complete.
    /// </summary>
    public static IReadOnlyList<string> Missing(string dir, Func<string, bool> knownMissing)
    {
        bool Has(string f) => HubCache.Present(Path.Combine(dir, f));
        var missing = new List<string>();
        bool adapter = Has("adapter_config.json");
        if (!Has("config.json") && !adapter) missing.Add("config.json");
        if (Has(WeightsIndex))
            missing.AddRange(Shards(Path.Combine(dir, WeightsIndex)).Where(s => !Has(s)));
        else if (!Has(Weights) && !(adapter && Has(AdapterWeights)))
            missing.Add(Weights);
        if (!adapter && !TokenizerFiles.Any(Has) && !TokenizerFiles.All(knownMissing)) missing.Add("tokenizer.json");
        return missing;
    }

    static string Preview(IReadOnlyList<string> files) =>
        files.Count == 0 ? "none" : string.Join(", ", files.Take(8)) + (files.Count > 8 ? $", … ({files.Count} in all)" : "");
}
