namespace RlhfSharp.Generation;

/// <summary>
/// One token the <see cref="Sampler"/> chose for batch row <paramref name="Row"/>, with its log-probability under the
/// model itself and, when <see cref="SamplingOptions.TopLogprobs"/> is set, the model's most likely tokens (else
/// <paramref name="Top"/> is empty).
/// </summary>
/// <param name="ModelLogprob">log-softmax of the raw logits at <paramref name="Id"/>.</param>
/// <param name="Top">The most likely tokens under the same distribution, most likely first.</param>
public sealed record SampledToken(int Row, int Id, float ModelLogprob, IReadOnlyList<(int Id, float Logprob)> Top);
