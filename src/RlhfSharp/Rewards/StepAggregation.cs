namespace RlhfSharp.Rewards;

/// <summary>
/// How a process reward model's step scores (each P(step is good)) become one score for a whole completion. Lightman et
/// al. 2023 (§2.6) rank best-of-n candidates by the product of the step probabilities (the probability every step is right)
/// and found min about as good; the last step's score alone is what an outcome model would give.
/// </summary>
public enum StepAggregation
{
    /// <summary>The weakest step: the completion is only as good as its worst step.</summary>
    Min,
    /// <summary>Π P(good): the probability every step is good (Lightman et al.'s choice).</summary>
    Product,
    /// <summary>The last step's score.</summary>
    Last,
}
