namespace RlhfSharp.Evaluation;

/// <summary>Token-weighted corpus perplexity: exp(<paramref name="MeanNll"/>) over <paramref name="Tokens"/> predicted tokens.</summary>
public sealed record PerplexityResult(double Perplexity, double MeanNll, long Tokens);
