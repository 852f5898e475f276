namespace RlhfSharp.Evaluation;

/// <summary>Pairwise comparison counts; <paramref name="Rate"/> = (wins + ties/2) / comparisons.</summary>
public sealed record WinRateResult(double Rate, int Wins, int Ties, int Losses);
