using RlhfSharp.Checkpoints;
using RlhfSharp.Models.T5;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Lora;

/// <summary>
/// LoRA on T5 (PEFT's <c>get_peft_model</c> on <c>T5ForConditionalGeneration</c>). T5's projections are separate
/// <c>nn.Linear</c>s named as HF names them (<c>encoder.block.0.layer.0.SelfAttention.q</c>, …<c>EncDecAttention.v</c>,
/// …<c>DenseReluDense.wi_0</c>), so each targeted module gets one <see cref="LoraPair"/> and its PEFT key is
/// <c>base_model.model.</c> + that name + <c>.lora_A.weight</c>. PEFT's default targets for model_type t5 are
/// <c>q</c> and <c>v</c> (peft/utils/constants.py <c>TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING["t5"]</c>),
/// which match the self-attention and the cross-attention of every block.
/// </summary>
public static class T5Lora
{
    /// <summary>PEFT's default targets for T5 (also mt5).</summary>
    public static readonly IReadOnlyList<string> DefaultTargets = ["q", "v"];

    /// <summary>PEFT's <c>task_type</c> for an encoder-decoder LM.</summary>
    public const string TaskType = "SEQ_2_SEQ_LM";

    /// <summary>
    /// Every linear layer that <paramref name="targets"/> select, by HF module name: a target matches a module named exactly
    /// so or ending in "." + target (PEFT's rule); <c>all-linear</c> takes every linear layer but the output head. A target
    /// that matches nothing is an error, as in PEFT.
    /// </summary>
    public static List<(string Module, Linear Linear)> Targets(T5ForConditionalGeneration model, IReadOnlyList<string> targets)
    {
        var linears = model.named_modules().Where(m => m.module is Linear && m.name != "lm_head").Select(m => (m.name, (Linear)m.module)).ToList();
        bool Matches(string module, string t) => t == LoraModel.AllLinear || module == t || module.EndsWith("." + t, StringComparison.Ordinal);
        var unmatched = targets.Where(t => !linears.Any(l => Matches(l.name, t))).ToList();
        if (unmatched.Count > 0)
        {
            var names = linears.Select(l => l.name[(l.name.LastIndexOf('.') + 1)..]).Distinct();
            throw new RlhfException($"lora target_modules: {string.Join(", ", unmatched.Select(t => $"'{t}'"))} not found in this t5 model; its projections are {string.Join(", ", names)}.");
        }
        return linears.Where(l => targets.Any(t => Matches(l.name, t))).ToList();
    }

    /// <summary>
    /// Freezes <paramref name="model"/> and attaches adapters to the modules <see cref="LoraConfig.TargetModules"/> names
    /// (default q and v). Returns the number of adapter parameters.
    /// </summary>
    /// <param name="hfPrefix">Where <paramref name="model"/> sits in the model PEFT wraps (<c>transformer.</c> in a reward model):
    /// the adapters' PEFT keys start with it.</param>
    public static long Attach(T5ForConditionalGeneration model, LoraConfig config, string hfPrefix = "")
    {
        if (model.Lora is not null) throw new InvalidOperationException("the model already has LoRA adapters");
        config.Validate("lora");
        var targets = config.TargetModules ?? DefaultTargets;
        var selected = Targets(model, targets);
        foreach (var p in model.parameters()) p.requires_grad = false;
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module);
        long count = 0;
        foreach (var (name, linear) in selected)
        {
            int dot = name.LastIndexOf('.');
            var owner = modules[name[..dot]] as ILoraHost ?? throw new InvalidOperationException($"{name}: its module takes no LoRA adapters");
            var weight = linear.weight!;
            var adapter = new LoraAdapter(weight.shape[1], [(hfPrefix + name, weight.shape[0])], new HashSet<string> { hfPrefix + name }, config, weight.dtype, weight.device);
            owner.AttachLora(name[(dot + 1)..], adapter);
            count += adapter.parameters().Sum(p => p.numel());
        }
        model.Lora = config with { TargetModules = [.. targets] };
        return count;
    }

    /// <summary>Writes the adapters as a PEFT folder (task_type SEQ_2_SEQ_LM) for the base <paramref name="baseModel"/>.</summary>
    public static void Save(T5ForConditionalGeneration model, string dir, string baseModel, Action<string>? writeExtras = null) =>
        PeftAdapter.Write(model, model.Lora ?? throw new InvalidOperationException("the model has no LoRA adapters"), TaskType,
            fanInFanOut: false, scoreHead: false, dir, baseModel, writeExtras);

    /// <summary>
    /// LoRA on a T5 reward model (PEFT <c>get_peft_model</c> with task_type SEQ_CLS on <c>T5ForSequenceClassification</c>):
    /// adapters on its body's q and v (keys under <c>transformer.</c>) while the classification head trains whole. PEFT's
    /// default <c>modules_to_save</c> for SEQ_CLS are <c>classifier</c> and <c>score</c> (peft_model.py
    /// PeftModelForSequenceClassification), which T5's head is not named, so the folder names <c>classification_head</c>.
    /// </summary>
    public static long Attach(T5ForSequenceClassification model, LoraConfig config) => Attach(model.transformer, config, RewardModelBody);

    /// <summary>Writes a LoRA T5 reward model as a PEFT folder (task_type SEQ_CLS, the head in <c>modules_to_save</c>).</summary>
    public static void Save(T5ForSequenceClassification model, string dir, string baseModel, Action<string>? writeExtras = null) =>
        PeftAdapter.Write(model, model.transformer.Lora ?? throw new InvalidOperationException("the model has no LoRA adapters"), "SEQ_CLS",
            fanInFanOut: false, scoreHead: true, dir, baseModel, writeExtras);

    /// <summary>The PEFT key prefix of a T5 reward model's body (transformers' base_model_prefix).</summary>
    const string RewardModelBody = "transformer.";

    /// <summary>
    /// A LoRA T5 reward model's folder read into <paramref name="model"/> (its base, with a new head): the adapters merged
    /// into the body (PEFT <c>merge_and_unload</c>), the head and the reward centring copied.
    /// </summary>
    public static void MergeRewardModel(T5ForSequenceClassification model, string dir)
    {
        var info = PeftAdapter.ReadInfo(dir);
        if (!info.ScoreHead) throw new RlhfException($"{Path.Combine(dir, PeftAdapter.ConfigFile)}: task_type is not SEQ_CLS: a T5 language model's adapter, not a reward model's.");
        var head = model.classification_head.named_parameters().ToDictionary(p => PeftAdapter.SavedKey("classification_head." + p.name), p => p.parameter);
        var weights = ReadWeights(dir, info, model.transformer, RewardModelBody, head.ToDictionary(kv => kv.Key, kv => kv.Value.shape));
        foreach (var (name, _) in Targets(model.transformer, info.Lora.TargetModules!))
            LoraModel.MergeSlice(model.transformer, name, 0, weights[PeftAdapter.Key(RewardModelBody + name, "lora_A")], weights[PeftAdapter.Key(RewardModelBody + name, "lora_B")], info.Lora.Scaling);
        using (no_grad())
            foreach (var (key, p) in head) p.copy_(weights[key]);
        foreach (var t in weights.Values) t.Dispose();
        string normalization = Path.Combine(dir, PeftAdapter.RewardFile);
        if (File.Exists(normalization))
        {
            var o = JsonNode.Parse(File.ReadAllText(normalization))!;
            model.RewardMean = (double?)o["reward_mean"];
            model.RewardStd = (double?)o["reward_std"];
        }
    }

    /// <summary>
    /// Reads the folder's adapter tensors, checked against the modules its target_modules select in <paramref name="model"/>
    /// (keys under <paramref name="hfPrefix"/>), plus the whole modules of <paramref name="saved"/> (a reward model's head).
    /// </summary>
    static Dictionary<string, Tensor> ReadWeights(string dir, PeftAdapter.Info info, T5ForConditionalGeneration model, string hfPrefix = "",
        IReadOnlyDictionary<string, long[]>? saved = null)
    {
        string path = Path.Combine(dir, PeftAdapter.WeightsFile);
        if (info.ScoreHead && saved is null) throw new RlhfException($"{Path.Combine(dir, PeftAdapter.ConfigFile)}: task_type SEQ_CLS is a reward model's; a T5 model takes {TaskType} adapters.");
        var shapes = Targets(model, info.Lora.TargetModules!).SelectMany(t => new (string, long[])[]
        {
            (PeftAdapter.Key(hfPrefix + t.Module, "lora_A"), [info.Lora.R, t.Linear.weight!.shape[1]]),
            (PeftAdapter.Key(hfPrefix + t.Module, "lora_B"), [t.Linear.weight!.shape[0], info.Lora.R]),
        }).Concat(saved?.Select(kv => (kv.Key, kv.Value)) ?? []);
        return PeftAdapter.ReadChecked(path, info.Lora, shapes);
    }

    /// <summary>Attaches the folder's adapters to <paramref name="model"/> (its base) with their saved values, to train on.</summary>
    public static void Load(T5ForConditionalGeneration model, string dir)
    {
        var info = PeftAdapter.ReadInfo(dir);
        var weights = ReadWeights(dir, info, model);
        Attach(model, info.Lora);
        using (no_grad())
            foreach (var (key, p) in PeftAdapter.StateDict(model))
                if (weights.TryGetValue(key, out var t)) p.copy_(t);
        foreach (var t in weights.Values) t.Dispose();
    }

    /// <summary>Folds the folder's adapters into the weights: W += (α/r)·B·A per targeted module (PEFT <c>merge_and_unload</c>).</summary>
    public static void Merge(T5ForConditionalGeneration model, string dir)
    {
        var info = PeftAdapter.ReadInfo(dir);
        var weights = ReadWeights(dir, info, model);
        foreach (var (name, _) in Targets(model, info.Lora.TargetModules!))
            LoraModel.MergeSlice(model, name, 0, weights[PeftAdapter.Key(name, "lora_A")], weights[PeftAdapter.Key(name, "lora_B")], info.Lora.Scaling);
        foreach (var t in weights.Values) t.Dispose();
    }

    /// <summary>
    /// A T5 folder, or a PEFT adapter folder on a T5 base (loaded with the adapters merged, as a later stage or
    /// <c>--model</c> reads a LoRA stage's checkpoint).
    /// </summary>
    public static T5ForConditionalGeneration LoadMerged(string dir, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        if (!PeftAdapter.IsAdapterFolder(dir)) return T5Checkpoint.Load(dir, dtype, device);
        var model = LoadMerged(PeftAdapter.ResolveBase(dir)); // the base may itself be an adapter folder (LoRA SFT, then LoRA DPO)
        Merge(model, dir);
        if (dtype != ScalarType.Float32) model.to(dtype);
        if (device is not null && device.type != DeviceType.CPU) model.to(device);
        return model;
    }
}
