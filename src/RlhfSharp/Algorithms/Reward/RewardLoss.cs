using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace RlhfSharp.Algorithms.Reward;

/// <summary>
/// Reward-model training losses: the Bradley–Terry pairwise loss (OpenRLHF/OpenRLHF@3c3be62
/// <c>openrlhf/models/loss.py</c> <c>PairWiseLoss</c>; huggingface/trl@f2cd577 <c>trl/trainer/reward_trainer.py</c>
/// <c>compute_loss</c>), InstructGPT's K-wise ranking loss (Ouyang et al. 2022, arXiv:2203.02155, Eq. 1) and the
/// reward-centering auxiliary term (Eisenstein et al. 2023, arXiv:2312.09244; TRL <c>center_rewards_coefficient</c>).
/// </summary>
public static class RewardLoss
{
    /// <summary>
    /// <c>losses_i = −logσ(chosen_i − rejected_i − margin_i)</c> and their mean; <paramref name="margin"/> is optional.
    /// </summary>
    /// <param name="chosenRewards">Scores of the preferred responses, [B].</param>
    /// <param name="rejectedRewards">Scores of the other responses, [B].</param>
    /// <param name="margin">Optional per-pair margin, [B] (Llama 2 style, TRL <c>inputs["margin"]</c>).</param>
    public static (Tensor Loss, Tensor Losses) Pairwise(Tensor chosenRewards, Tensor rejectedRewards, Tensor? margin = null)
    {
        var logits = chosenRewards - rejectedRewards;
        if (margin is not null) logits = logits - margin;
        var losses = -F.logsigmoid(logits);
        return (losses.mean(), losses);
    }

    /// <summary>
    /// InstructGPT K-wise ranking loss: for each prompt, the mean over all <c>C(K,2)</c> pairs <c>i &lt; j</c> of
    /// <c>−logσ(s_i − s_j)</c>, then the mean over prompts. Every pair of a prompt is one batch element, which is what
    /// keeps the K responses of a prompt from being overfit (Ouyang et al. 2022, §3.5).
    /// </summary>
    /// <param name="scores">[P, K]: column k holds the reward of the response ranked k-th best (k = 0 best).</param>
    public static (Tensor Loss, Tensor PerPromptLoss) KWiseRanking(Tensor scores)
    {
        long k = scores.shape[1];
        if (k < 2) throw new ArgumentException("K-wise ranking needs K >= 2 responses per prompt.", nameof(scores));
        var diff = scores.unsqueeze(2) - scores.unsqueeze(1);                 // (P, K, K): diff[p, i, j] = s_i − s_j
        var better = torch.ones(k, k, dtype: scores.dtype, device: scores.device).triu(1); // pairs i < j
        var perPrompt = (-F.logsigmoid(diff) * better).sum(new long[] { 1, 2 }) / (k * (k - 1) / 2.0);
        return (perPrompt.mean(), perPrompt);
    }

    /// <summary>
    /// Reward-centering term <c>coef · mean((chosen + rejected)²)</c>, added to the pairwise loss to keep rewards
    /// near zero mean (Eisenstein et al. 2023; TRL <c>reward_trainer.py</c>, <c>center_rewards_coefficient</c>, e.g. 0.01).
    /// </summary>
    public static Tensor Centering(Tensor chosenRewards, Tensor rejectedRewards, double coef)
        => coef * (chosenRewards + rejectedRewards).square().mean();
}
