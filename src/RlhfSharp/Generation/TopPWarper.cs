using static TorchSharp.torch;

namespace RlhfSharp.Generation;

/// <summary>
/// Nucleus sampling (Holtzman et al. 2020) as transformers' <c>TopPLogitsWarper</c>: sorted ascending, the tokens whose
/// cumulative probability stays at or below 1 − p become −∞; the most likely token is always kept.
/// </summary>
public sealed class TopPWarper(double topP) : ILogitsProcessor
{
    public Tensor Process(Tensor scores, DecodingState state)
    {
        var (sorted, order) = scores.sort(-1, descending: false);
        var cumulative = sorted.softmax(-1).cumsum(-1);
        var remove = cumulative.le(1 - topP);
        remove.index_fill_(1, tensor(new long[] { scores.shape[1] - 1 }, device: scores.device), false); // keep at least one
        return scores.masked_fill(remove.scatter(1, order, remove), float.NegativeInfinity);
    }
}
