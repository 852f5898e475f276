using System.CommandLine;
using RlhfSharp.Algorithms.Grpo;
using RlhfSharp.Data;
using RlhfSharp.Checkpoints;
using RlhfSharp.Pipeline;

namespace RlhfSharp.Cli.Commands;

/// <summary>
/// <c>rlhf grpo</c>, <c>rlhf rloo</c>, <c>rlhf reinforce-pp</c>, <c>rlhf reinforce-pp-baseline</c> and <c>rlhf remax</c>: critic-free online RL from the
/// SFT checkpoint against the recipe's <c>rewards</c> (default <c>&lt;run&gt;/rm/checkpoint</c>) on the recipe's <c>ppo_prompts</c>, configured by the
/// recipe's <c>grpo</c> section (the command chooses the estimator).
/// </summary>
public static class GroupRlCommands
{
    public static IEnumerable<Command> Create()
    {
        yield return Command("grpo", AdvantageEstimator.Grpo, "GRPO: group-relative advantages, no critic (DeepSeekMath).");
        yield return Command("rloo", AdvantageEstimator.Rloo, "RLOO: leave-one-out baseline over the group, KL folded into the reward.");
        yield return Command("reinforce-pp", AdvantageEstimator.ReinforcePp, "REINFORCE++: KL-shaped token returns whitened over the batch.");
        yield return Command("reinforce-pp-baseline", AdvantageEstimator.ReinforcePpBaseline, "REINFORCE++-baseline: group-mean baseline, then global whitening.");
        yield return Command("remax", AdvantageEstimator.Remax, "ReMax: the greedy completion's reward as baseline.");
    }

    static Command Command(string name, AdvantageEstimator estimator, string description)
    {
        var folder = new GroupRlConfig { Estimator = estimator }.StageName;
        return StageCommands.Stage(name, description, (recipe, model, stages, cancel) => Run(recipe with { Grpo = recipe.Grpo with { Estimator = estimator } }, model, stages, cancel), folder);
    }

    static Dictionary<string, double> Run(StageRecipe recipe, PretrainedModel model, RunStages stages, CancellationToken cancel)
    {
        return stages.GroupRl(recipe.Grpo, StageCommands.StartingPoint(stages, model, "sft"), stages.Checkpoint("rm"), StageCommands.OnlinePrompts(recipe, model), null, cancel, recipe.Rewards);
    }
}
