namespace RlhfSharp.Lora;

/// <summary>
/// LoRA adapters as PEFT saves them (<c>save_pretrained</c>): <c>adapter_config.json</c> and
/// <c>adapter_model.safetensors</c> whose keys are <c>base_model.model.</c> + the HF module name +
/// <c>.lora_A.weight</c> / <c>.lora_B.weight</c>, without the adapter name (peft/utils/save_and_load.py,
/// <c>get_peft_model_state_dict</c>); a reward model's score head is saved whole as <c>base_model.model.score.weight</c>
/// (<c>modules_to_save</c>). Our fused projections are split into HF's modules on the way out and joined on the way in.
/// </summary>
public static class PeftAdapter
{
    public const string ConfigFile = "adapter_config.json";
    public const string WeightsFile = "adapter_model.safetensors";
    /// <summary>Our reward-model centring (not a PEFT field, so it sits beside the adapter).</summary>
    public const string RewardFile = "reward_normalization.json";
    const string Prefix = "base_model.model.";
    /// <summary>The key of a reward model's score head in the adapter file.</summary>
    public const string ScoreHeadKey = Prefix + "score.weight";

    /// <summary>What an adapter folder says about itself.</summary>
    public sealed record Info(LoraConfig Lora, string BaseModel, bool ScoreHead);

    public static bool IsAdapterFolder(string path) => File.Exists(Path.Combine(path, ConfigFile));

    /// <summary>The adapter tensors of a model with PEFT's key names, sorted by key.</summary>
    public static List<KeyValuePair<string, Tensor>> StateDict(nn.Module model)
    {
        var result = new List<KeyValuePair<string, Tensor>>();
        foreach (var (_, adapter) in LoraModel.Adapters(model))
            foreach (var slice in adapter.Slices)
            {
                result.Add(new(Prefix + slice.HfModule + ".lora_A.weight", slice.Pair.lora_A));
                result.Add(new(Prefix + slice.HfModule + ".lora_B.weight", slice.Pair.lora_B));
            }
        if (model is ScoreModel sm) result.Add(new(Prefix + "score.weight", sm.score.weight!));
        if (model is Models.T5.T5ForSequenceClassification t5)
            foreach (var (name, p) in t5.classification_head.named_parameters()) result.Add(new(SavedKey("classification_head." + name), p));
        return result.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// Writes the adapters of <paramref name="model"/> (and a score head) as a PEFT folder: temporary folder, then a
    /// rename. <paramref name="baseModel"/> is what the adapters were trained on (written as an absolute path).
    /// </summary>
    public static void Save(nn.Module model, string dir, string baseModel, Action<string>? writeExtras = null)
    {
        var (body, scoreHead) = model switch
        {
            CausalLM lm => (lm.model, false),
            ScoreModel sm => (sm.model, true),
            _ => throw new ArgumentException($"cannot save adapters of a {model.GetType().Name}"),
        };
        var lora = body.Lora ?? throw new InvalidOperationException("the model has no LoRA adapters");
        // GPT-2's Conv1D stores [in, out]; PEFT then transposes B·A when merging. lora_A/lora_B keep nn.Linear shapes.
        Write(model, lora, scoreHead ? "SEQ_CLS" : "CAUSAL_LM", body.Config.Family == ModelFamily.Gpt2, scoreHead, dir, baseModel, writeExtras);
    }

    /// <summary>The PEFT key of a parameter saved whole (<c>modules_to_save</c>), by its HF name.</summary>
    public static string SavedKey(string hfName) => Prefix + hfName;

    /// <summary>The PEFT key of one factor (<c>lora_A</c> or <c>lora_B</c>) of the HF module <paramref name="hfModule"/>.</summary>
    public static string Key(string hfModule, string factor) => Prefix + hfModule + "." + factor + ".weight";

    /// <summary>Writes adapter_config.json and the adapter tensors of <paramref name="model"/> (any model with adapters).</summary>
    internal static void Write(nn.Module model, LoraConfig lora, string taskType, bool fanInFanOut, bool scoreHead, string dir, string baseModel, Action<string>? writeExtras)
    {
        var config = new JsonObject
        {
            ["peft_type"] = "LORA",
            ["task_type"] = taskType,
            ["base_model_name_or_path"] = Path.GetFullPath(baseModel),
            ["r"] = lora.R,
            ["lora_alpha"] = lora.Alpha,
            ["lora_dropout"] = lora.Dropout,
            ["target_modules"] = new JsonArray(lora.TargetModules!.Select(t => (JsonNode)t).ToArray()),
            ["bias"] = "none",
            ["fan_in_fan_out"] = fanInFanOut,
            // PEFT saves a reward model's head whole; T5's is classification_head, outside PEFT's default names (classifier, score).
            ["modules_to_save"] = !scoreHead ? null : new JsonArray(model is Models.T5.T5ForSequenceClassification ? "classification_head" : "score"),
            ["init_lora_weights"] = true,
            ["inference_mode"] = true,
            ["use_rslora"] = false,
            ["use_dora"] = false,
            ["layers_to_transform"] = null,
            ["layers_pattern"] = null,
            ["rank_pattern"] = new JsonObject(),
            ["alpha_pattern"] = new JsonObject(),
        };
        AtomicDirectory.Write(dir, tmp =>
        {
            File.WriteAllText(Path.Combine(tmp, ConfigFile), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            SafeTensors.Save(Path.Combine(tmp, WeightsFile), StateDict(model));
            if (model is IRewardModel { RewardMean: not null } rm)
                File.WriteAllText(Path.Combine(tmp, RewardFile), new JsonObject { ["reward_mean"] = rm.RewardMean, ["reward_std"] = rm.RewardStd }.ToJsonString());
            writeExtras?.Invoke(tmp);
        });
    }

    /// <summary>Reads <c>adapter_config.json</c>; anything we do not implement (DoRA, rsLoRA, per-layer ranks, biases) is an error naming the key.</summary>
    public static Info ReadInfo(string dir)
    {
        string path = Path.Combine(dir, ConfigFile);
        if (!File.Exists(path)) throw new RlhfException($"{dir}: no {ConfigFile}: not a PEFT adapter folder.");
        JsonObject o;
        try { o = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new RlhfException($"{path}: not a JSON object."); }
        catch (JsonException e) { throw new RlhfException($"{path}: invalid JSON ({e.Message})."); }
        T Get<T>(string key, T fallback)
        {
            if (o[key] is not JsonValue v) return fallback;
            try { return v.GetValue<T>(); }
            catch (Exception) { throw new RlhfException($"{path}: key '{key}' has the wrong type ({v.ToJsonString()})."); }
        }
        if (Get("peft_type", "") != "LORA") throw new RlhfException($"{path}: peft_type is '{Get("peft_type", "")}'; only LORA adapters are supported.");
        if (Get("use_dora", false)) throw new RlhfException($"{path}: use_dora is true; DoRA adapters are not supported.");
        if (Get("use_rslora", false)) throw new RlhfException($"{path}: use_rslora is true; rank-stabilised scaling is not supported.");
        if (Get("bias", "none") != "none") throw new RlhfException($"{path}: bias is '{Get("bias", "")}'; only \"none\" is supported.");
        foreach (var key in new[] { "rank_pattern", "alpha_pattern" })
            if (o[key] is JsonObject { Count: > 0 }) throw new RlhfException($"{path}: {key} is set; per-module ranks are not supported.");
        if (o["layers_to_transform"] is not null) throw new RlhfException($"{path}: layers_to_transform is set; adapting a subset of layers is not supported.");
        var targets = o["target_modules"] switch
        {
            JsonArray a => a.Select(t => t!.GetValue<string>()).ToList(),
            JsonValue v when v.TryGetValue<string>(out var s) => [s],
            _ => throw new RlhfException($"{path}: key 'target_modules' is missing."),
        };
        string task = Get("task_type", "CAUSAL_LM");
        var lora = new LoraConfig
        {
            R = Get("r", 8), Alpha = Get("lora_alpha", 8.0), Dropout = Get("lora_dropout", 0.0), TargetModules = targets,
        };
        string baseModel = Get<string?>("base_model_name_or_path", null) ?? throw new RlhfException($"{path}: key 'base_model_name_or_path' is missing.");
        return new Info(lora, baseModel, task == "SEQ_CLS");
    }

    /// <summary>Reads and checks the adapter tensors against the slices <paramref name="info"/> implies for <paramref name="config"/>.</summary>
    static Dictionary<string, Tensor> ReadWeights(string dir, Info info, TransformerConfig config)
    {
        var shapes = new List<(string, long[])>();
        foreach (var (projection, targeted) in LoraModel.Targets(config, info.Lora.TargetModules!))
            for (int i = 0; i < projection.HfModules.Length; i++)
            {
                string m = projection.HfModules[i];
                if (!targeted.Contains(m)) continue;
                long inFeatures = projection.Ours.EndsWith("down_proj") || projection.Ours.EndsWith("ffn.value_proj") ? config.IntermediateSize
                    : projection.Ours.EndsWith("o_proj") ? (long)config.NumHeads * config.HeadDim
                    : projection.Ours.EndsWith("attn.output_proj") ? config.AttentionHiddenSize : config.HiddenSize; // the last two: RWKV
                shapes.Add((Prefix + m + ".lora_A.weight", [info.Lora.R, inFeatures]));
                shapes.Add((Prefix + m + ".lora_B.weight", [projection.Rows[i], info.Lora.R]));
            }
        return ReadChecked(Path.Combine(dir, WeightsFile), info.Lora, shapes, allowed: key => info.ScoreHead && key == Prefix + "score.weight");
    }

    /// <summary>
    /// The adapter file's tensors, each of <paramref name="shapes"/> present with its shape (implied by the base model and
    /// r), and nothing else but what <paramref name="allowed"/> accepts: a folder for another base or rank is an error
    /// naming the key, never a silent partial load.
    /// </summary>
    internal static Dictionary<string, Tensor> ReadChecked(string path, LoraConfig lora, IEnumerable<(string Key, long[] Shape)> shapes, Func<string, bool>? allowed = null)
    {
        var weights = SafeTensors.Load(path);
        var expected = new HashSet<string>();
        foreach (var (key, shape) in shapes)
        {
            expected.Add(key);
            if (!weights.TryGetValue(key, out var t)) throw new RlhfException($"{path}: missing '{key}'.");
            if (!t.shape.SequenceEqual(shape))
                throw new RlhfException($"{path}: '{key}' has shape [{string.Join("x", t.shape)}], but the base model and r = {lora.R} imply [{string.Join("x", shape)}].");
        }
        var extra = weights.Keys.Where(k => !expected.Contains(k) && !(allowed?.Invoke(k) ?? false)).ToList();
        if (extra.Count > 0) throw new RlhfException($"{path}: unexpected tensors {string.Join(", ", extra.Take(3).Select(k => $"'{k}'"))} for target_modules [{string.Join(", ", lora.TargetModules!)}].");
        return weights;
    }

    /// <summary>Attaches the folder's adapters to <paramref name="model"/> (the base it was trained on) with their exact saved values.</summary>
    public static void Attach(nn.Module model, string dir)
    {
        var info = ReadInfo(dir);
        var config = model switch { CausalLM lm => lm.Config, ScoreModel sm => sm.Config, _ => throw new ArgumentException(model.GetType().Name) };
        var weights = ReadWeights(dir, info, config);
        LoraModel.Attach(model, info.Lora);
        using var _ = no_grad();
        foreach (var (key, p) in StateDict(model))
            if (weights.TryGetValue(key, out var t)) p.copy_(t);
        foreach (var t in weights.Values) t.Dispose();
    }

    /// <summary>Folds the folder's adapters into the weights of <paramref name="model"/>: W += (α/r)·B·A per HF module (PEFT <c>merge_and_unload</c>).</summary>
    /// <param name="model">The base model, in any dtype.</param>
    /// <param name="dir">The adapter folder.</param>
    /// <param name="baseDir">
    /// The HF folder or llama2.c file the base was loaded from, when <paramref name="model"/> is held narrower than float32: each targeted
    /// weight is then re-read from it as float32, the update added there and the sum rounded once, so the merged weights
    /// are exactly those of a float32 merge converted afterwards, without the model ever existing in float32.
    /// </param>
    public static void Merge(nn.Module model, string dir, string? baseDir = null)
    {
        var info = ReadInfo(dir);
        var config = model switch { CausalLM lm => lm.Config, ScoreModel sm => sm.Config, _ => throw new ArgumentException(model.GetType().Name) };
        var weights = ReadWeights(dir, info, config);
        foreach (var (projection, targeted) in LoraModel.Targets(config, info.Lora.TargetModules!))
        {
            long offset = 0;
            for (int i = 0; i < projection.HfModules.Length; i++)
            {
                string m = projection.HfModules[i];
                if (targeted.Contains(m))
                {
                    using var stored = baseDir is null ? null
                        : Directory.Exists(baseDir) ? HuggingFaceCheckpoint.ReadFloat32(baseDir, m + ".weight", model is ScoreModel)
                        : Llama2cCheckpoint.ReadFloat32(baseDir, m + ".weight");
                    LoraModel.MergeSlice(model, projection.Ours, offset, weights[Prefix + m + ".lora_A.weight"], weights[Prefix + m + ".lora_B.weight"], info.Lora.Scaling, stored);
                }
                offset += projection.Rows[i];
            }
        }
        if (model is ScoreModel sm2 && weights.TryGetValue(Prefix + "score.weight", out var score))
            using (no_grad()) sm2.score.weight!.copy_(score);
        foreach (var t in weights.Values) t.Dispose();
    }

    /// <summary>Where the base model is: as written, else relative to the adapter folder.</summary>
    public static string ResolveBase(string dir, string? baseOverride = null)
    {
        string written = baseOverride ?? ReadInfo(dir).BaseModel;
        if (Directory.Exists(written) || File.Exists(written)) return written;
        string beside = Path.Combine(dir, written);
        if (Directory.Exists(beside) || File.Exists(beside)) return beside;
        if (Hub.HubRepo.TryParse(written) is { } repo) return Hub.HubResolver.FromEnvironment().ResolveModel(repo);
        throw new RlhfException($"{Path.Combine(dir, ConfigFile)}: base model '{written}' not found (base_model_name_or_path); pass the base explicitly.");
    }

    /// <summary>The base causal LM with the adapters of <paramref name="dir"/> merged in.</summary>
    public static CausalLM LoadCausalLM(string dir, ScalarType dtype = ScalarType.Float32, Device? device = null, string? baseOverride = null)
    {
        string basePath = ResolveBase(dir, baseOverride);
        // The base is built in its dtype straight from the files, so no float32 copy of a narrower model ever exists;
        // the merge then adds to the float32 values on file and rounds once (see Merge).
        var model = Directory.Exists(basePath) ? HuggingFaceCheckpoint.LoadCausalLM(basePath, dtype) : Llama2cCheckpoint.LoadCausalLM(basePath, dtype);
        Merge(model, dir, dtype == ScalarType.Float32 ? null : basePath);
        if (device is not null) model.to(device);
        return model;
    }

    /// <summary>A reward model: the base (an LM gets a score head) with the adapters merged and the saved score head.</summary>
    public static ScoreModel LoadScoreModel(string dir, ScalarType dtype = ScalarType.Float32, Device? device = null, string? baseOverride = null)
    {
        var info = ReadInfo(dir);
        if (!info.ScoreHead) throw new RlhfException($"{Path.Combine(dir, ConfigFile)}: task_type is not SEQ_CLS: this adapter belongs to a language model, not a reward model.");
        var weights = SafeTensors.Load(Path.Combine(dir, WeightsFile));
        if (!weights.TryGetValue(Prefix + "score.weight", out var score))
            throw new RlhfException($"{Path.Combine(dir, WeightsFile)}: missing '{Prefix}score.weight' (modules_to_save): a reward adapter needs its score head.");
        int labels = (int)score.shape[0];
        foreach (var t in weights.Values) t.Dispose();
        string basePath = ResolveBase(dir, baseOverride);
        bool narrow = dtype != ScalarType.Float32;
        // Built in its dtype (the saved head below replaces any new one), merged against the float32 values on file.
        var model = HuggingFaceCheckpoint.LoadScoreModel(basePath, dtype, allowNewHead: true, numLabels: labels);
        Merge(model, dir, narrow ? basePath : null);
        string reward = Path.Combine(dir, RewardFile);
        if (File.Exists(reward) && JsonNode.Parse(File.ReadAllText(reward)) is JsonObject r)
        {
            model.RewardMean = r["reward_mean"]?.GetValue<double>();
            model.RewardStd = r["reward_std"]?.GetValue<double>();
        }
        if (device is not null) model.to(device);
        return model;
    }
}
