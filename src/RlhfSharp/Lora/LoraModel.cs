using RlhfSharp.Checkpoints;
using RlhfSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Lora;

/// <summary>
/// Puts LoRA adapters on a loaded model (PEFT's <c>get_peft_model</c>): targets are HF module names, mapped onto our
/// fused projections by <see cref="HfWeightMap.Projections"/>; every base weight is frozen so only the adapters (and
/// a score head, PEFT's <c>modules_to_save</c>) reach the optimizer.
/// </summary>
public static class LoraModel
{
    /// <summary>PEFT's default targets per model type (<c>TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING</c> in peft/utils/constants.py).</summary>
    public static IReadOnlyList<string> DefaultTargets(TransformerConfig c) => c.ModelType switch
    {
        "gpt2" => ["c_attn"],
        "llama" or "mistral" or "qwen2" => ["q_proj", "v_proj"],
        "gemma" or "gemma2" or "mixtral" => ["q_proj", "v_proj"],
        "gpt_neox" or "bloom" => ["query_key_value"],
        "opt" or "gptj" => ["q_proj", "v_proj"],
        "rwkv" => ["key", "value", "receptance"], // each matches both the time mix's and the channel mix's module
        _ => throw new RlhfException($"no default LoRA target modules for model_type {c.ModelType}: set lora.target_modules."),
    };

    /// <summary>The PEFT shorthand for every linear layer but the output head.</summary>
    public const string AllLinear = "all-linear";

    /// <summary>
    /// Freezes <paramref name="model"/> and attaches adapters; a reward model's score head stays trainable (PEFT's
    /// <c>modules_to_save</c> for sequence classification). Returns the number of adapter parameters.
    /// </summary>
    public static long Attach(nn.Module model, LoraConfig config)
    {
        var (body, head) = model switch
        {
            CausalLM lm => (lm.model, (nn.Module?)null),
            ScoreModel sm => (sm.model, sm.score),
            _ => throw new ArgumentException($"cannot attach LoRA to a {model.GetType().Name}"),
        };
        foreach (var p in model.parameters()) p.requires_grad = false;
        if (head is not null) foreach (var p in head.parameters()) p.requires_grad = true;
        return Attach(body, config, freeze: false);
    }

    /// <summary>Attaches adapters to the projections of <paramref name="body"/> that <see cref="LoraConfig.TargetModules"/> names.</summary>
    public static long Attach(DecoderBody body, LoraConfig config, bool freeze = true)
    {
        if (body.Lora is not null) throw new InvalidOperationException("the model already has LoRA adapters");
        config.Validate("lora");
        var targets = config.TargetModules ?? DefaultTargets(body.Config);
        if (freeze) foreach (var p in body.parameters()) p.requires_grad = false;
        long count = 0;
        foreach (var (projection, targeted) in Targets(body.Config, targets))
        {
            var (owner, name) = Owner(body, projection.Ours);
            var weight = owner.named_parameters().FirstOrDefault(p => p.name == name + ".weight").parameter
                         ?? throw new InvalidOperationException($"{projection.Ours}: not a projection");
            var adapter = new LoraAdapter(weight.shape[1], projection.HfModules.Zip(projection.Rows).ToList(), targeted, config, weight.dtype, weight.device);
            ((ILoraHost)owner).AttachLora(name, adapter);
            count += adapter.parameters().Sum(p => p.numel());
        }
        body.Lora = config with { TargetModules = [.. targets] };
        return count;
    }

    /// <summary>
    /// The projections <paramref name="targets"/> select and, for each, which of its HF modules are targeted. A target
    /// matches a module named exactly so or ending in "." + target (PEFT's rule); one that matches nothing is an error,
    /// as in PEFT.
    /// </summary>
    public static List<(HfWeightMap.Projection Projection, HashSet<string> Targeted)> Targets(TransformerConfig c, IReadOnlyList<string> targets)
    {
        var projections = HfWeightMap.Projections(c).ToList();
        bool Matches(string hfModule, string t) => t == AllLinear || hfModule == t || hfModule.EndsWith("." + t, StringComparison.Ordinal);
        var unmatched = targets.Where(t => !projections.SelectMany(p => p.HfModules).Any(m => Matches(m, t))).ToList();
        if (unmatched.Count > 0)
        {
            var names = projections.SelectMany(p => p.HfModules).Select(m => m[(m.LastIndexOf('.') + 1)..]).Distinct();
            throw new RlhfException($"lora target_modules: {string.Join(", ", unmatched.Select(t => $"'{t}'"))} not found in this {c.ModelType} model; its projections are {string.Join(", ", names)}.");
        }
        return projections.Select(p => (p, p.HfModules.Where(m => targets.Any(t => Matches(m, t))).ToHashSet()))
            .Where(x => x.Item2.Count > 0).ToList();
    }

    /// <summary>
    /// The module owning one of our projections (<c>model.layers.3.attn.qkv_proj</c> → layer 3's attention, "qkv_proj"):
    /// found by its path under the body, so any family whose blocks are <see cref="ILoraHost"/>s takes adapters.
    /// </summary>
    static (nn.Module Owner, string Name) Owner(DecoderBody body, string ours)
    {
        int dot = ours.LastIndexOf('.');
        string path = ours["model.".Length..dot];
        var owner = body.named_modules().FirstOrDefault(m => m.name == path).module
                    ?? throw new InvalidOperationException($"{ours}: no module '{path}' in the model");
        if (owner is not ILoraHost) throw new InvalidOperationException($"{ours}: module '{path}' ({owner.GetType().Name}) takes no LoRA adapters");
        return (owner, ours[(dot + 1)..]);
    }

    /// <summary>Every adapter of a model with the path of the projection it adapts (e.g. <c>model.layers.0.attn.qkv_proj</c>).</summary>
    public static IEnumerable<(string Projection, LoraAdapter Adapter)> Adapters(nn.Module model) =>
        model.named_modules().Where(m => m.module is LoraAdapter).Select(m => (m.name[..^"_lora".Length], (LoraAdapter)m.module));

    /// <summary>
    /// Turns off the adapters' dropout and the model's own (<see cref="Models.ModelDropout.Disable"/>). Trainers that
    /// compare log-probs of the same policy across modes (PPO's ratio, old log-probs from eval mode against new ones in
    /// train mode; DPO's policy against its dropout-free reference) need the same function in both, as TRL's
    /// <c>disable_dropout=True</c> (<c>disable_dropout_in_model</c>, which zeroes every <c>nn.Dropout</c>, PEFT's
    /// <c>lora_dropout</c> included) and OpenRLHF's PPO and DPO (<c>lora_dropout=0</c>) ensure.
    /// </summary>
    public static void DisableDropout(nn.Module model)
    {
        foreach (var (_, adapter) in Adapters(model)) adapter.Dropout = 0;
        Models.ModelDropout.Disable(model);
    }

    /// <summary>
    /// Switches every adapter of <paramref name="model"/> off until disposed: the forward pass is then exactly the base
    /// model's, which is how DPO, PPO and GRPO get their frozen reference without a second copy of the weights.
    /// </summary>
    public static IDisposable AdaptersOff(nn.Module model)
    {
        var adapters = Adapters(model).Select(a => a.Adapter).Where(a => a.Enabled).ToList();
        foreach (var a in adapters) a.Enabled = false;
        return new Restore(adapters);
    }

    sealed class Restore(List<LoraAdapter> adapters) : IDisposable
    {
        public void Dispose() { foreach (var a in adapters) a.Enabled = true; }
    }

    /// <summary>
    /// Adds (α/r)·B·A (<paramref name="lowRankB"/>·<paramref name="lowRankA"/>) into rows [offset, offset+rows) of our projection weight in
    /// <paramref name="model"/> (PEFT's <c>merge</c>; GPT-2's Conv1D transpose is handled by HfWeightMap on save).
    /// </summary>
    /// <param name="stored">When given, the slice's float32 values on file: the slice becomes their sum with the update, rounded once to the weight's dtype.</param>
    public static void MergeSlice(nn.Module model, string projection, long offset, Tensor lowRankA, Tensor lowRankB, double scaling, Tensor? stored = null)
    {
        var weight = model.named_parameters().FirstOrDefault(p => p.name == projection + ".weight").parameter
                     ?? throw new InvalidOperationException($"{projection}.weight not found");
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var delta = lowRankB.to(float32).matmul(lowRankA.to(float32)) * scaling;
        var slice = weight.narrow(0, offset, delta.shape[0]);
        if (stored is not null) slice.copy_(stored.add(delta));
        else slice.add_(delta.to(weight.dtype).to(weight.device));
    }
}
