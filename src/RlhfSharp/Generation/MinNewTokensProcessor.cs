using static TorchSharp.torch;

namespace RlhfSharp.Generation;

/// <summary>
/// transformers' <c>MinNewTokensLengthLogitsProcessor</c>: every EOS id scores −∞ until <paramref name="minNewTokens"/>
/// tokens are out.
/// </summary>
public sealed class MinNewTokensProcessor(int minNewTokens, IReadOnlyCollection<int> eosIds) : ILogitsProcessor
{
    readonly long[] eos = eosIds.Select(x => (long)x).ToArray();

    public Tensor Process(Tensor scores, DecodingState state) =>
        state.Step < minNewTokens && eos.Length > 0 ? scores.index_fill(1, tensor(eos, device: scores.device), float.NegativeInfinity) : scores;
}
