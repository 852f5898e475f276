using RlhfSharp.Algorithms.GroupRl;
using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Algorithms.Preference;

namespace RlhfSharp.Pipeline;

/// <summary>
/// The alignment methods, one row each: command name, stage folder, config section, data and runner. The stage
/// commands (<c>rlhf ppo|dpo|…|online-dpo</c>) and <c>rlhf pipeline --algo</c> both run them from here, so a new method
/// is one row (and its config, loss and step in Algorithms/).
/// </summary>
public static class MethodTable
{
    public static IReadOnlyList<AlignmentMethodSpec> All { get; } =
    [
        new(AlignmentMethod.Ppo, "ppo", "ppo", "PPO against the reward model with a per-token KL penalty to the SFT model.", true, RunPpo),
        // `dpo` keeps the config's cDPO choice (label smoothing) and otherwise means the sigmoid loss.
        Pairs(AlignmentMethod.Dpo, "dpo", "DPO on preference pairs against the frozen SFT model (cDPO with dpo.loss=cdpo).",
            loss => loss is PreferenceLossKind.Cdpo ? loss : PreferenceLossKind.Sigmoid),
        Pairs(AlignmentMethod.Ipo, "ipo", "IPO: a squared loss on length-averaged log-ratios that does not overfit deterministic preferences.", _ => PreferenceLossKind.Ipo),
        new(AlignmentMethod.Kto, "kto", "kto", "KTO on completions labelled desirable or undesirable (preference pairs are unpaired).", true, RunKto),
        Pairs(AlignmentMethod.Orpo, "orpo", "ORPO: NLL on the chosen response plus an odds-ratio penalty, no reference model.", _ => PreferenceLossKind.Orpo),
        Pairs(AlignmentMethod.Simpo, "simpo", "SimPO: reference-free, length-averaged log-probs with a target margin.", _ => PreferenceLossKind.Simpo),
        GroupRl(AlignmentMethod.Grpo, "grpo", AdvantageEstimator.Grpo, "GRPO: group-relative advantages, no critic (DeepSeekMath)."),
        GroupRl(AlignmentMethod.Rloo, "rloo", AdvantageEstimator.Rloo, "RLOO: leave-one-out baseline over the group, KL folded into the reward."),
        GroupRl(AlignmentMethod.ReinforcePp, "reinforce-pp", AdvantageEstimator.ReinforcePp, "REINFORCE++: KL-shaped token returns whitened over the batch."),
        GroupRl(AlignmentMethod.ReinforcePpBaseline, "reinforce-pp-baseline", AdvantageEstimator.ReinforcePpBaseline, "REINFORCE++-baseline: group-mean baseline, then global whitening."),
        GroupRl(AlignmentMethod.Remax, "remax", AdvantageEstimator.Remax, "ReMax: the greedy completion's reward as baseline."),
        new(AlignmentMethod.Rs, "rs", "rs", "Rejection-sampling fine-tuning: best-of-n samples picked by the reward model, distilled by SFT, repeated.", false,
            (c, d, stages, cancel) =>
            {
                var prompts = d.Prompts();
                return stages.RejectionSampling(c.Rs, stages.StartingPoint("sft"), stages.Checkpoint("rm"), prompts, cancel, d.Rewards);
            }),
        new(AlignmentMethod.OnlineDpo, "online-dpo", "online_dpo", "Online DPO: pairs sampled from the current policy, labelled by the reward model, a DPO pass each round.", false,
            (c, d, stages, cancel) =>
            {
                var prompts = d.Prompts();
                return stages.OnlineDpo(c.OnlineDpo, stages.StartingPoint("sft"), stages.Checkpoint("rm"), prompts, cancel, d.Rewards, d.OnlineDpoJudge);
            }),
        new(AlignmentMethod.Ilql, "ilql", "ilql", "ILQL: offline Q-learning on scored completions (rankings scored by rank); decoding adds β·(Q − V) to the logits.", false,
            (c, d, stages, cancel) =>
            {
                var (train, eval) = (d.Scored ?? throw new RlhfException("ilql: this data source has no scored completions."))(c.Ilql);
                return stages.Ilql(c.Ilql, stages.StartingPoint("sft"), train, eval, cancel);
            }),
    ];

    /// <summary>The row of a method.</summary>
    public static AlignmentMethodSpec Of(AlignmentMethod method) => All.Single(m => m.Method == method);

    static Dictionary<string, double> RunPpo(IMethodConfigs c, MethodData d, RunStages stages, CancellationToken cancel)
    {
        // A separate critic starts from the reward model, so it must exist; a value head needs it only for the reward.
        string rm = c.Ppo.Critic == CriticKind.SeparateFromRewardModel ? stages.RequireCheckpoint("rm", "rlhf rm") : stages.Checkpoint("rm");
        var prompts = d.Prompts();
        var ptx = d.PtxExamples();
        return stages.Ppo(c.Ppo, stages.StartingPoint("sft"), rm, prompts, ptx, d.RolloutMetrics, cancel, d.Rewards);
    }

    static AlignmentMethodSpec Pairs(AlignmentMethod method, string command, string description, Func<PreferenceLossKind, PreferenceLossKind> loss) =>
        new(method, command, command, description, true, (c, d, stages, cancel) =>
        {
            var config = c.Dpo with { Loss = loss(c.Dpo.Loss) };
            var (train, eval) = d.Pairs(config);
            return stages.Preference(config, stages.StartingPoint("sft"), train, eval, cancel);
        });

    static Dictionary<string, double> RunKto(IMethodConfigs c, MethodData d, RunStages stages, CancellationToken cancel)
    {
        var config = c.Dpo with { Loss = PreferenceLossKind.Kto };
        var (train, eval) = d.Labeled(config);
        return stages.Kto(config, stages.StartingPoint("sft"), train, eval, cancel);
    }

    static AlignmentMethodSpec GroupRl(AlignmentMethod method, string command, AdvantageEstimator estimator, string description) =>
        new(method, command, new GroupRlConfig { Estimator = estimator }.StageName, description, true, (c, d, stages, cancel) =>
        {
            var prompts = d.Prompts();
            return stages.GroupRl(c.Grpo with { Estimator = estimator }, stages.StartingPoint("sft"), stages.Checkpoint("rm"), prompts, d.RolloutMetrics, cancel, d.Rewards);
        });
}
