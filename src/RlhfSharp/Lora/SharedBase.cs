using System.Runtime.InteropServices;

namespace RlhfSharp.Lora;

/// <summary>
/// PPO's four roles on ONE copy of the base weights (issue #12 §3, <c>ppo.shared_base</c>): the actor is the policy's
/// adapter, the reference is the same module with its adapters off (<see cref="CausalLM.WithoutAdapters"/>), and the
/// reward model and the critic are <see cref="ScoreModel"/>s whose body tensors ARE the policy's (the same storage),
/// each with its own adapter and head. This is TRL's Multi Adapter RL ("a single base model for everything",
/// trl docs/source/multi_adapter_rl.md, v0.11: the reward model is a PEFT adapter trained on the same base, the
/// reference the base with adapters disabled) with OpenRLHF's separate critic initialised from the reward model
/// (openrlhf/cli/train_ppo.py: the critic loads <c>reward_pretrain</c>): here its adapter and head start as a trainable
/// copy of the reward model's, on the frozen shared base.
/// The base is frozen in every role, so sharing it changes no number; only the memory of three extra copies goes.
/// </summary>
public static class SharedBase
{
    /// <summary>
    /// Whether the reward model in <paramref name="rmDir"/> can sit on the base of the policy loaded from
    /// <paramref name="policyDir"/>: a PEFT reward adapter (task_type SEQ_CLS) whose base folder is that one.
    /// </summary>
    public static bool Fits(string policyDir, string rmDir) =>
        PeftAdapter.IsAdapterFolder(rmDir) && PeftAdapter.ReadInfo(rmDir).ScoreHead
        && SamePath(PeftAdapter.ResolveBase(rmDir), policyDir);

    static bool SamePath(string a, string b) =>
        string.Equals(Path.TrimEndingDirectorySeparator(Path.GetFullPath(a)), Path.TrimEndingDirectorySeparator(Path.GetFullPath(b)), StringComparison.Ordinal);

    /// <summary>The frozen reward model of <paramref name="rmDir"/> (its adapter, score head and normalisation) on <paramref name="policy"/>'s base.</summary>
    public static ScoreModel RewardModel(CausalLM policy, string policyDir, string rmDir)
    {
        var rm = AdapterOnBase(policy, policyDir, rmDir, "the reward model");
        foreach (var p in rm.parameters()) p.requires_grad = false;
        rm.eval();
        return rm;
    }

    /// <summary>
    /// PPO's critic on <paramref name="policy"/>'s base: the reward model's adapter and score head (one label, read as a
    /// value per token), trainable; the base stays frozen.
    /// </summary>
    public static ScoreModel Critic(CausalLM policy, string policyDir, string rmDir) => AdapterOnBase(policy, policyDir, rmDir, "the critic");

    static ScoreModel AdapterOnBase(CausalLM policy, string policyDir, string rmDir, string role)
    {
        if (!Fits(policyDir, rmDir))
            throw new RlhfException($"ppo.shared_base: {role} starts from {rmDir}, which is not a LoRA reward adapter trained on the policy's base {policyDir}; " +
                                    "train the reward model with rm.lora from the same starting point, or set ppo.shared_base to false.");
        var weights = SafeTensors.Load(Path.Combine(rmDir, PeftAdapter.WeightsFile));
        int labels = weights.TryGetValue(PeftAdapter.ScoreHeadKey, out var head) ? (int)head.shape[0] : 0;
        foreach (var t in weights.Values) t.Dispose();
        if (labels == 0) throw new RlhfException($"{Path.Combine(rmDir, PeftAdapter.WeightsFile)}: no score head (modules_to_save): a reward adapter needs one.");
        var model = OnBase(policy, labels);
        try
        {
            PeftAdapter.Attach(model, rmDir); // its adapter with the saved values, its head trainable (PEFT modules_to_save)
            string reward = Path.Combine(rmDir, PeftAdapter.RewardFile);
            if (File.Exists(reward) && JsonNode.Parse(File.ReadAllText(reward)) is JsonObject r)
            {
                model.RewardMean = r["reward_mean"]?.GetValue<double>();
                model.RewardStd = r["reward_std"]?.GetValue<double>();
            }
            return model;
        }
        catch { model.Dispose(); throw; }
    }

    /// <summary>
    /// A score model with <paramref name="numLabels"/> labels whose body parameters share <paramref name="policy"/>'s body
    /// storage (frozen); only its head is its own (uninitialised: the caller fills it).
    /// </summary>
    public static ScoreModel OnBase(CausalLM policy, int numLabels)
    {
        var first = policy.model.parameters().First();
        ScoreModel model;
        // Built over empty storage (no init, nothing drawn from the generator); each body tensor is then pointed at the
        // policy's, so the empty storage is released and the body exists once.
        using (LayerInit.Skipped()) model = new ScoreModel(policy.Config with { NumLabels = numLabels }, first.dtype);
        var source = policy.model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using (no_grad())
            foreach (var (name, p) in model.model.named_parameters())
            {
                var s = source.GetValueOrDefault(name) ?? throw new InvalidOperationException($"{name}: not in the policy's body");
                p.requires_grad = false;
                StorageShare.Set(p, s); // the same storage, not a copy: a write to one is seen by the other
            }
        if (first.device.type != DeviceType.CPU) model.score.to(first.device);
        return model;
    }

    /// <summary>
    /// Bytes of parameter storage the modules hold, each storage counted once however many parameters (or modules)
    /// point at it: what sharing the base saves.
    /// </summary>
    public static long StorageBytes(params nn.Module[] modules)
    {
        var seen = new HashSet<IntPtr>();
        long bytes = 0;
        foreach (var p in modules.SelectMany(m => m.parameters()))
            if (seen.Add(THSStorage_data_ptr(p.Handle))) bytes += (long)THSStorage_nbytes(p.Handle);
        return bytes;
    }

    // TorchSharp 0.107 exposes a storage's address only through Storage<T> (protected); its native library exports both.
    [DllImport("LibTorchSharp")] static extern IntPtr THSStorage_data_ptr(IntPtr tensor);
    [DllImport("LibTorchSharp")] static extern ulong THSStorage_nbytes(IntPtr tensor);
}
