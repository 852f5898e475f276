namespace RlhfSharp.Checkpoints;

/// <summary>
/// ILQL's heads beside the model in its checkpoint folder (docs/algorithms/ilql.md):
/// <list type="bullet">
/// <item><c>ilql_heads.safetensors</c>: float32 tensors under trlX's keys (<c>state_dict(heads_only=True)</c>:
/// <c>ilql_heads.v_head.0.weight</c>, <c>ilql_heads.q_heads.1.2.bias</c>, <c>ilql_heads.target_q_heads.0.0.weight</c>, …);</item>
/// <item><c>ilql_heads.json</c>: <c>hidden_size</c>, <c>vocab_size</c>, <c>two_qs</c>, the training's Polyak <c>alpha</c>
/// and the decoding <c>beta</c> that <c>rlhf generate</c>/<c>serve</c> use unless told otherwise (<c>--ilql-beta</c>).</item>
/// </list>
/// A folder with these files decodes as ILQL when loaded through <see cref="PretrainedModel.Load"/>; training stages that
/// start from it use the language model alone.
/// </summary>
public static class IlqlHeadsFile
{
    public const string WeightsFile = "ilql_heads.safetensors";
    public const string ConfigFile = "ilql_heads.json";
    const string Prefix = "ilql_heads.";

    public static bool Exists(string dir) => File.Exists(Path.Combine(dir, WeightsFile)) || File.Exists(Path.Combine(dir, ConfigFile));

    /// <summary>Writes both files into <paramref name="dir"/> (a checkpoint folder being written, before its rename).</summary>
    public static void Save(IlqlHeads heads, string dir, double alpha, double beta)
    {
        SafeTensors.Save(Path.Combine(dir, WeightsFile), heads.named_parameters().Select(p => KeyValuePair.Create(Prefix + p.name, (Tensor)p.parameter)));
        var config = new JsonObject
        {
            ["hidden_size"] = heads.HiddenSize, ["vocab_size"] = heads.VocabSize, ["two_qs"] = heads.TwoQs, ["alpha"] = alpha, ["beta"] = beta,
            ["head"] = "trlX make_head: Linear(hidden, 2*hidden), ReLU, Linear(2*hidden, out)",
        };
        File.WriteAllText(Path.Combine(dir, ConfigFile), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>
    /// The heads saved in <paramref name="dir"/> for <paramref name="model"/> (in its dtype and device), with the saved
    /// decoding β. Errors name the file and what is wrong.
    /// </summary>
    public static (IlqlHeads Heads, double Beta) Load(string dir, CausalLM model) =>
        Load(dir, model.model.OutputSize, model.Config.VocabSize, model.parameters().First());

    /// <summary>The heads saved in <paramref name="dir"/> for a T5 <paramref name="model"/> (on its decoder's hidden states).</summary>
    public static (IlqlHeads Heads, double Beta) Load(string dir, Models.T5.T5ForConditionalGeneration model) =>
        Load(dir, model.Config.DModel, model.Config.VocabSize, model.shared.weight!);

    static (IlqlHeads Heads, double Beta) Load(string dir, int modelHidden, int modelVocab, Tensor first)
    {
        string configPath = Path.Combine(dir, ConfigFile), weightsPath = Path.Combine(dir, WeightsFile);
        if (!File.Exists(configPath)) throw new RlhfException($"{configPath} not found: ILQL heads need it beside {WeightsFile}.");
        if (!File.Exists(weightsPath)) throw new RlhfException($"{weightsPath} not found: {ConfigFile} names ILQL heads but their weights are missing.");
        JsonObject config;
        try { config = JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject ?? throw new RlhfException($"{configPath}: expected a JSON object."); }
        catch (JsonException e) { throw new RlhfException($"{configPath}: invalid JSON ({e.Message})."); }
        int hidden = Number<int>(config, "hidden_size", configPath), vocab = Number<int>(config, "vocab_size", configPath);
        double beta = Number<double>(config, "beta", configPath);
        bool twoQs = config["two_qs"] is JsonValue v && v.TryGetValue(out bool b) ? b : throw new RlhfException($"{configPath}: 'two_qs' must be true or false.");
        if (hidden != modelHidden || vocab != modelVocab)
            throw new RlhfException($"{configPath}: heads for hidden_size {hidden}, vocab_size {vocab}, but the model has {modelHidden} and {modelVocab}: they do not belong together.");
        var heads = new IlqlHeads(hidden, vocab, twoQs, first.dtype);
        var saved = SafeTensors.Load(weightsPath);
        try
        {
            var ours = heads.named_parameters().ToDictionary(p => Prefix + p.name, p => p.parameter);
            if (saved.Keys.Except(ours.Keys).FirstOrDefault() is string extra) throw new RlhfException($"{weightsPath}: unexpected tensor '{extra}' (two_qs is {twoQs} in {ConfigFile}).");
            if (ours.Keys.Except(saved.Keys).FirstOrDefault() is string missing) throw new RlhfException($"{weightsPath}: tensor '{missing}' is missing.");
            using (no_grad())
                foreach (var (key, p) in ours)
                {
                    if (!saved[key].shape.SequenceEqual(p.shape))
                        throw new RlhfException($"{weightsPath}: tensor '{key}' has shape [{string.Join(", ", saved[key].shape)}], expected [{string.Join(", ", p.shape)}].");
                    p.copy_(saved[key]);
                }
        }
        finally { foreach (var t in saved.Values) t.Dispose(); }
        heads.to(first.device);
        heads.eval();
        return (heads, beta);
    }

    /// <summary>Sets <see cref="CausalLM.Ilql"/> when <paramref name="dir"/> holds ILQL heads; returns whether it did.</summary>
    public static bool AttachIfPresent(CausalLM model, string dir)
    {
        if (!Directory.Exists(dir) || !Exists(dir)) return false;
        var (heads, beta) = Load(dir, model);
        model.Ilql = new IlqlDecoding(heads, beta);
        return true;
    }

    /// <summary>Sets <see cref="Models.T5.T5ForConditionalGeneration.Ilql"/> when <paramref name="dir"/> holds ILQL heads (a T5 trained by <c>rlhf ilql</c>).</summary>
    public static bool AttachIfPresent(Models.T5.T5ForConditionalGeneration model, string dir)
    {
        if (!Directory.Exists(dir) || !Exists(dir)) return false;
        var (heads, beta) = Load(dir, model);
        model.Ilql = new IlqlDecoding(heads, beta);
        return true;
    }

    static T Number<T>(JsonObject o, string key, string path) where T : struct
    {
        if (o[key] is JsonValue v && v.TryGetValue(out double d) && double.IsFinite(d))
            return (T)Convert.ChangeType(d, typeof(T), CultureInfo.InvariantCulture);
        throw new RlhfException($"{path}: '{key}' must be a number.");
    }
}
