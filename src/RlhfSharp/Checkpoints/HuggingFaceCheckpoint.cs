namespace RlhfSharp.Checkpoints;

/// <summary>
/// Hugging Face model folders: <c>config.json</c> plus <c>model.safetensors</c>, or shards listed in
/// <c>model.safetensors.index.json</c>. Saving writes a temporary folder and renames it into place, so a
/// crash never leaves a half-written checkpoint.
/// </summary>
public static class HuggingFaceCheckpoint
{
    public const string ConfigFile = "config.json";
    public const string WeightsFile = "model.safetensors";
    public const string IndexFile = "model.safetensors.index.json";

    /// <summary>True when the folder's config names a <c>*ForSequenceClassification</c> architecture.</summary>
    public static bool IsScoreModel(string dir)
    {
        if (PeftAdapter.IsAdapterFolder(dir)) return PeftAdapter.ReadInfo(dir).ScoreHead;
        var path = Path.Combine(dir, ConfigFile);
        var arch = (JsonNode.Parse(File.ReadAllText(path)) as JsonObject)?["architectures"] as JsonArray;
        return arch?.Any(a => a?.GetValue<string>().EndsWith("ForSequenceClassification") == true) == true;
    }

    /// <summary>Reads config.json and every weight (HF names, float32, CPU): for tools and tests; loading a model streams instead.</summary>
    public static (TransformerConfig Config, Dictionary<string, Tensor> Weights) Read(string dir)
    {
        var (config, shards) = Open(dir);
        var weights = new Dictionary<string, Tensor>();
        foreach (var shard in shards)
            foreach (var (k, t) in SafeTensors.Load(shard.Path)) weights[k] = t;
        return (config, weights);
    }

    /// <summary>
    /// config.json and the validated headers of the weight files (one, or every shard of
    /// <c>model.safetensors.index.json</c>); reads no weights. <paramref name="beforeHeaders"/> runs after config.json
    /// is read and before any weight file is opened (the memory check).
    /// </summary>
    static (TransformerConfig Config, List<SafeTensorsHeader> Shards) Open(string dir, Action<TransformerConfig>? beforeHeaders = null)
    {
        if (!Directory.Exists(dir)) throw new RlhfException($"{dir}: model folder not found.");
        var config = TransformerConfig.Load(Path.Combine(dir, ConfigFile));
        beforeHeaders?.Invoke(config);
        string single = Path.Combine(dir, WeightsFile), index = Path.Combine(dir, IndexFile);
        if (File.Exists(single)) return (config, [SafeTensorsHeader.Read(single)]);
        if (!File.Exists(index))
            throw new RlhfException($"{dir}: no {WeightsFile} or {IndexFile} (pytorch_model.bin is not supported: convert it to safetensors).");
        JsonObject map;
        try { map = (JsonNode.Parse(File.ReadAllText(index)) as JsonObject)?["weight_map"] as JsonObject ?? throw new RlhfException($"{index}: key 'weight_map' is missing."); }
        catch (JsonException e) { throw new RlhfException($"{index}: invalid JSON ({e.Message})."); }
        var shardNames = new List<string>();
        foreach (var (key, value) in map)
        {
            if (value is not JsonValue v || !v.TryGetValue<string>(out var file) || file.Length == 0)
                throw new RlhfException($"{index}: weight_map['{key}'] must be a file name.");
            // A shard is a file next to the index, never a path that leaves the folder.
            if (file != Path.GetFileName(file)) throw new RlhfException($"{index}: weight_map['{key}'] names '{file}', not a file in the model folder.");
            if (!shardNames.Contains(file)) shardNames.Add(file);
        }
        var shards = shardNames.Select(name => SafeTensorsHeader.Read(Path.Combine(dir, name))).ToList();
        var where = new Dictionary<string, string>();
        foreach (var shard in shards)
            foreach (var e in shard.Entries)
                if (!where.TryAdd(e.Name, shard.Path))
                    throw new RlhfException($"{shard.Path}: tensor '{e.Name}' is also in {where[e.Name]}.");
        var missing = map.Select(kv => kv.Key).Where(k => !where.ContainsKey(k)).ToList();
        if (missing.Count > 0) throw new RlhfException($"{index}: weight '{missing[0]}' is listed but not in its shard.");
        return (config, shards);
    }

    /// <summary>A causal LM from an HF folder, or from a PEFT adapter folder (its base with the adapters merged in).</summary>
    /// <param name="dir">The model folder.</param>
    /// <param name="dtype">Element type to hold the weights in, whatever the files store (F32, BF16, F16).</param>
    /// <param name="device">Where the model runs (default CPU).</param>
    /// <param name="kvCache">The generation the caller will run (batch, prompt + new tokens), counted in the memory check.</param>
    public static CausalLM LoadCausalLM(string dir, ScalarType dtype = ScalarType.Float32, Device? device = null, (int Batch, int Tokens)? kvCache = null)
    {
        if (PeftAdapter.IsAdapterFolder(dir)) return PeftAdapter.LoadCausalLM(dir, dtype, device);
        var (config, shards) = Open(dir, c => MemoryBudget.Check(c, dtype, scoreHead: false, dir, kvCache));
        CausalLM model;
        using (LayerInit.Skipped()) model = new CausalLM(config, dtype); // every weight comes from the files: no random init to throw away
        return FillFromFiles(model, config, shards, scoreHead: false, dir, device, allowMissingHead: false);
    }

    /// <param name="allowNewHead">Start the score head from scratch when the checkpoint is a language model (an RM initialised from SFT).</param>
    public static ScoreModel LoadScoreModel(string dir, ScalarType dtype = ScalarType.Float32, Device? device = null, bool allowNewHead = false, int numLabels = 1)
    {
        if (PeftAdapter.IsAdapterFolder(dir))
        {
            // A reward adapter carries its head; a language-model adapter is a merged LM that gets a new head.
            if (PeftAdapter.ReadInfo(dir).ScoreHead) return PeftAdapter.LoadScoreModel(dir, dtype, device);
            if (!allowNewHead) throw new RlhfException($"{dir}: a language-model adapter, not a reward model (task_type CAUSAL_LM).");
            using var lm = PeftAdapter.LoadCausalLM(dir);
            var sm = new ScoreModel(lm.Config with { NumLabels = numLabels });
            var source = lm.model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            using (no_grad())
                foreach (var (name, p) in sm.model.named_parameters()) p.copy_(source[name]);
            sm.eval();
            if (dtype != ScalarType.Float32) sm.to(dtype);
            if (device is not null) sm.to(device);
            return sm;
        }
        var (config, shards) = Open(dir, c => MemoryBudget.Check(c, dtype, scoreHead: true, dir));
        bool newHead = allowNewHead && !shards.Any(s => s.Find("score.weight") is not null);
        if (newHead) config = config with { NumLabels = numLabels };
        // A new head starts random, drawn after the body's init from the generator the caller seeded, as it always was; so
        // that seeded head stays what it was, the body keeps its init then. A complete checkpoint is built with no init.
        ScoreModel model;
        using (newHead ? null : LayerInit.Skipped()) model = new ScoreModel(config, dtype);
        return FillFromFiles(model, config, shards, scoreHead: true, dir, device, newHead);
    }

    /// <summary>
    /// Fills a freshly built module (already in its dtype) from the files, tensor by tensor in file order and in
    /// bounded chunks, each HF tensor straight into its slice of our parameter; so loading takes the model's size
    /// plus a chunk, never a second copy. Every key and shape is checked before the first byte is read.
    /// </summary>
    static T FillFromFiles<T>(T module, TransformerConfig config, List<SafeTensorsHeader> shards, bool scoreHead, string source,
        Device? device, bool allowMissingHead) where T : nn.Module
    {
        try
        {
            var parameters = module.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
            var placements = HfWeightMap.Placements(config, scoreHead);
            var stored = new Dictionary<string, (SafeTensorsHeader Shard, SafeTensorsEntry Entry)>();
            foreach (var shard in shards)
                foreach (var e in shard.Entries) stored[e.Name] = (shard, e);
            // A file saved from the bare body (keys without HF's base prefix) is read under the prefixed names.
            var named = HfWeightMap.WithBasePrefix(config, stored.Keys, placements.Keys);
            stored = named.ToDictionary(kv => kv.Key, kv => stored[kv.Value]);
            var plan = new List<(SafeTensorsHeader Shard, SafeTensorsEntry Entry, Tensor Target, bool Transpose, Tensor? Whole)>();
            var filledRows = new Dictionary<string, long>();
            foreach (var (key, p) in placements) // in HF's module order, so the first problem named is the first a reader expects
            {
                if (!stored.TryGetValue(key, out var s))
                {
                    if (allowMissingHead && p.Ours is "score.weight" or "lm_head.weight") continue;
                    throw new RlhfException($"{source}: missing weight '{key}' (model_type {config.ModelType}, {config.NumLayers} layers).");
                }
                var param = parameters[p.Ours];
                long rows = p.Rows > 0 ? p.Rows : param.shape[0];
                long[] want = p.Conv1D ? [param.shape[1], param.shape[0]] : [rows, .. param.shape.Skip(1)];
                if (!s.Entry.Shape.SequenceEqual(want))
                    throw new RlhfException($"{source}: weight '{key}' has shape [{s.Entry.ShapeText}], but config.json implies [{string.Join("x", want)}].");
                bool whole = !p.Conv1D && p.RowOffset == 0 && rows == param.shape[0];
                plan.Add((s.Shard, s.Entry, p.Conv1D ? param : param.narrow(0, p.RowOffset, rows), p.Conv1D, whole ? param : null));
                filledRows[p.Ours] = filledRows.GetValueOrDefault(p.Ours) + (p.Conv1D ? param.shape[0] : rows);
            }
            // A parameter the files leave partly unfilled would keep its random init, or uninitialised memory when built
            // without init (LayerInit): refuse instead.
            foreach (var (name, param) in parameters)
                if (filledRows.GetValueOrDefault(name) != (param.dim() == 0 ? 1 : param.shape[0])
                    && !(allowMissingHead && name is "score.weight" or "lm_head.weight"))
                    throw new InvalidOperationException($"{source}: parameter '{name}' is not filled by the weight map of model_type {config.ModelType}");
            var unexpected = stored.Keys.Where(k => !placements.ContainsKey(k) && !HfWeightMap.IsIgnorable(k, config)).ToList();
            if (unexpected.Count > 0)
                throw new RlhfException($"{source}: unexpected weights {string.Join(", ", unexpected.Take(5).Select(k => $"'{k}'"))}{(unexpected.Count > 5 ? $" and {unexpected.Count - 5} more" : "")} for model_type {config.ModelType}.");
            // Read each file front to back: sequential reads are what the disk and the page cache are fastest at.
            plan.Sort((a, b) => a.Shard == b.Shard ? a.Entry.Begin.CompareTo(b.Entry.Begin) : shards.IndexOf(a.Shard).CompareTo(shards.IndexOf(b.Shard)));
            // A parameter the file holds whole, in its dtype, becomes a view of the mapped file; the rest (fused q/k/v and
            // gate/up rows, GPT-2's transposed Conv1D, another dtype) is copied in bounded chunks.
            foreach (var group in plan.GroupBy(x => x.Shard))
            {
                using var file = File.OpenHandle(group.Key.Path);
                var wholeDtype = group.FirstOrDefault(x => x.Whole is not null).Whole?.dtype;
                using var mapped = wholeDtype is { } d ? SafeTensors.Map(group.Key, d) : null;
                foreach (var (shard, entry, target, transpose, whole) in group)
                    if (mapped is null || whole is null || !SafeTensors.TryShare(mapped, shard, entry, whole))
                        SafeTensors.CopyInto(file, shard, entry, target, transpose);
            }
            foreach (var (_, _, target, transpose, _) in plan) if (!transpose) target.Dispose(); // the narrow views
        }
        catch
        {
            module.Dispose();
            throw;
        }
        module.eval();
        if (device is not null) module.to(device);
        return module;
    }

    /// <summary>
    /// One weight of the folder as float32 in our layout ([out, in]; GPT-2's Conv1D transposed), read on its own: the exact
    /// stored values a LoRA merge adds to when the model itself is held in a narrower dtype. Bounded by that one tensor.
    /// </summary>
    internal static Tensor ReadFloat32(string dir, string key, bool scoreHead)
    {
        var (config, shards) = Open(dir);
        foreach (var shard in shards)
            if (shard.Find(key) is { } entry)
            {
                bool conv1D = HfWeightMap.Placements(config, scoreHead).TryGetValue(key, out var p) && p.Conv1D;
                long[] shape = conv1D ? [entry.Shape[1], entry.Shape[0]] : entry.Shape;
                var result = empty(shape, float32);
                using var file = File.OpenHandle(shard.Path);
                SafeTensors.CopyInto(file, shard, entry, result, conv1D);
                return result;
            }
        throw new RlhfException($"{dir}: missing weight '{key}'.");
    }

    /// <summary>
    /// Writes a model as an HF folder (config.json, safetensors weights, sharded above
    /// <paramref name="maxShardBytes"/>), plus whatever <paramref name="writeExtras"/> adds (tokenizer files),
    /// into a temporary folder that then replaces <paramref name="dir"/>.
    /// </summary>
    public static void Save(nn.Module model, string dir, bool bf16 = false, long maxShardBytes = 5_000_000_000, Action<string>? writeExtras = null)
    {
        var (config, scoreHead) = model switch
        {
            CausalLM lm => (lm.Config, false),
            ScoreModel sm => (sm.Config, true),
            _ => throw new ArgumentException($"cannot save a {model.GetType().Name} as a Hugging Face model"),
        };
        // The adapters have no HF key of their own: saving the base alone would silently drop what was trained.
        if (LoraModel.Adapters(model).Any())
            throw new InvalidOperationException("the model has LoRA adapters: save them with PeftAdapter.Save, or merge (rlhf lora merge) for a full checkpoint");
        var ours = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        var hf = HfWeightMap.ToHf(config, ours, scoreHead);

        AtomicDirectory.Write(dir, tmp =>
        {
            File.WriteAllText(Path.Combine(tmp, ConfigFile), config.ToJson(Architecture(config, scoreHead)).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            WriteWeights(tmp, hf, bf16, maxShardBytes);
            writeExtras?.Invoke(tmp);
        });
    }

    static void WriteWeights(string dir, List<KeyValuePair<string, Tensor>> hf, bool bf16, long maxShardBytes)
    {
        int width = bf16 ? 2 : 4;
        var shards = new List<List<KeyValuePair<string, Tensor>>> { new() };
        long current = 0, total = 0;
        foreach (var kv in hf)
        {
            long bytes = kv.Value.numel() * width;
            if (current > 0 && current + bytes > maxShardBytes) { shards.Add(new()); current = 0; }
            shards[^1].Add(kv);
            current += bytes; total += bytes;
        }
        if (shards.Count == 1)
        {
            SafeTensors.Save(Path.Combine(dir, WeightsFile), hf, bf16);
            return;
        }
        var weightMap = new JsonObject();
        for (int i = 0; i < shards.Count; i++)
        {
            string name = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            SafeTensors.Save(Path.Combine(dir, name), shards[i], bf16);
            foreach (var kv in shards[i]) weightMap[kv.Key] = name;
        }
        var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = total }, ["weight_map"] = weightMap };
        File.WriteAllText(Path.Combine(dir, IndexFile), index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    static string Architecture(TransformerConfig c, bool scoreHead) => (c.ModelType, scoreHead) switch
    {
        ("gpt2", false) => "GPT2LMHeadModel",
        ("gpt2", true) => "GPT2ForSequenceClassification",
        ("llama", false) => "LlamaForCausalLM",
        ("llama", true) => "LlamaForSequenceClassification",
        ("mistral", false) => "MistralForCausalLM",
        ("mistral", true) => "MistralForSequenceClassification",
        ("qwen2", false) => "Qwen2ForCausalLM",
        ("qwen2", true) => "Qwen2ForSequenceClassification",
        ("gemma", false) => "GemmaForCausalLM",
        ("gemma", true) => "GemmaForSequenceClassification",
        ("gemma2", false) => "Gemma2ForCausalLM",
        ("gemma2", true) => "Gemma2ForSequenceClassification",
        ("phi3", false) => "Phi3ForCausalLM",
        ("phi3", true) => "Phi3ForSequenceClassification",
        ("mixtral", false) => "MixtralForCausalLM",
        ("mixtral", true) => "MixtralForSequenceClassification",
        ("qwen2_moe", false) => "Qwen2MoeForCausalLM",
        ("qwen2_moe", true) => "Qwen2MoeForSequenceClassification",
        ("gpt_neox", false) => "GPTNeoXForCausalLM",
        ("gpt_neox", true) => "GPTNeoXForSequenceClassification",
        ("opt", false) => "OPTForCausalLM",
        ("opt", true) => "OPTForSequenceClassification",
        ("gptj", false) => "GPTJForCausalLM",
        ("gptj", true) => "GPTJForSequenceClassification",
        ("bloom", false) => "BloomForCausalLM",
        ("bloom", true) => "BloomForSequenceClassification",
        ("rwkv", false) => "RwkvForCausalLM",
        // transformers v4.44 has no RWKV classification head: ours keeps the *ForSequenceClassification layout of the other
        // families (the body's rwkv.* keys and score.weight), a name our loader and IsScoreModel recognise.
        ("rwkv", true) => "RwkvForSequenceClassification",
        _ => throw new RlhfException($"no HF architecture for model_type {c.ModelType}"),
    };
}
