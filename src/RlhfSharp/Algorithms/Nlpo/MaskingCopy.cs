using RlhfSharp.Algorithms.Ppo;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Nlpo;

/// <summary>
/// What both of NLPO's masking policies are (<see cref="MaskingPolicy"/> for a decoder-only actor,
/// <see cref="Seq2SeqMaskingPolicy"/> for T5): a frozen copy of the actor, in eval mode, refreshed from it on RL4LMs'
/// schedule (<see cref="MaskRefresh"/>) and saved with the stage's state, whose top-p sets (<see cref="TopPRule"/>) are
/// the action space of every rollout. The subclasses say how the copy reads a rollout.
/// </summary>
public abstract class MaskingCopy<TModel> : IActionSpaceMask, IDisposable where TModel : nn.Module
{
    readonly MaskRefresh refresh;

    /// <param name="policy">The actor.</param>
    /// <param name="copy">The copy of its architecture (the masking dtype); its weights are the actor's after this.</param>
    /// <param name="alwaysAllowed">Token ids never masked (RL4LMs: the tokenizer's all_special_ids).</param>
    protected MaskingCopy(TModel policy, TModel copy, NlpoConfig config, IReadOnlyList<int> alwaysAllowed)
    {
        Model = copy;
        Rule = new TopPRule(config, alwaysAllowed);
        refresh = new MaskRefresh(policy, copy, config.TargetUpdateIterations);
        refresh.Copy();
        copy.eval();
        foreach (var p in copy.parameters()) p.requires_grad = false;
    }

    /// <summary>The frozen copy.</summary>
    protected TModel Model { get; }

    protected TopPRule Rule { get; }

    /// <summary>The masking policy's weights: saved with the stage's state, so a resumed run masks as the uninterrupted one.</summary>
    public IReadOnlyDictionary<string, nn.Module> Modules => new Dictionary<string, nn.Module> { ["mask_policy"] = Model };

    /// <summary>How many times the copy was refreshed in this process.</summary>
    public int Refreshes => refresh.Refreshes;

    public abstract IRecordedTokenMask NewRollout();

    public void AfterRollout(int step) => refresh.AfterRollout(step);

    public void Dispose() => Model.Dispose();
}
