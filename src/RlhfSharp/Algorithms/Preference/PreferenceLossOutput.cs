using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Preference;

/// <summary>
/// What a pairwise preference loss (DPO, cDPO, IPO, SimPO) returns: the batch loss, the loss of each pair, and the
/// implicit rewards TRL and OpenRLHF log (for IPO and DPO <c>β·(logπ − logπ_ref)</c>; for SimPO <c>β·logπ</c>).
/// </summary>
/// <param name="Loss">Mean of <paramref name="Losses"/> (a 0-d tensor).</param>
/// <param name="Losses">Loss of each pair, shape [B].</param>
/// <param name="ChosenRewards">Implicit reward of each chosen response, shape [B] (detached).</param>
/// <param name="RejectedRewards">Implicit reward of each rejected response, shape [B] (detached).</param>
public sealed record PreferenceLossOutput(Tensor Loss, Tensor Losses, Tensor ChosenRewards, Tensor RejectedRewards)
{
    /// <summary>The batch mean of <paramref name="losses"/>, with the rewards detached.</summary>
    public static PreferenceLossOutput Of(Tensor losses, Tensor chosenRewards, Tensor rejectedRewards) =>
        new(losses.mean(), losses, chosenRewards.detach(), rejectedRewards.detach());
}
