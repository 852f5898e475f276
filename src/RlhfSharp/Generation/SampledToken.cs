namespace RlhfSharp.Generation;

/// <summary>
/// One token the <see cref="Sampler"/> chose for batch row <paramref name="Row"/>, with the model's own log-probabilities
/// when <see cref="SamplingOptions.TopLogprobs"/> is set (else <paramref name="ModelLogprob"/> is NaN and
/// <paramref name="Top"/> empty).
/// </summary>
/// <param name="ModelLogprob">log-softmax of the raw logits at <paramref name="Id"/>.</param>
/// <param name="Top">The most likely tokens under the same distribution, most likely first.</param>
public sealed record SampledToken(int Row, int Id, float ModelLogprob, IReadOnlyList<(int Id, float Logprob)> Top);
