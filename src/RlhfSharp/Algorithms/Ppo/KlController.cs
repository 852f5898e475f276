namespace RlhfSharp.Algorithms.Ppo;

/// <summary>
/// The coefficient β of the per-token KL penalty. Fixed, or adaptive (Ziegler et al. 2019, §2.2): β is nudged by
/// a proportional controller so the observed KL tracks a target, β ← β·(1 + clip((KL − target)/target, ±0.2)·n/horizon).
/// </summary>
public sealed class KlController(double initialCoef, double? target, int horizon)
{
    public double Coef { get; private set; } = initialCoef;

    /// <param name="observedKl">The last rollout batch's KL in the target's unit (per token or per sequence, see <see cref="PpoConfig"/>).</param>
    /// <param name="steps">Samples in that batch.</param>
    public void Update(double observedKl, int steps)
    {
        if (target is not double t || t <= 0) return;
        double error = Math.Clamp((observedKl - t) / t, -0.2, 0.2);
        Coef *= 1 + error * steps / horizon;
    }

    /// <summary>Restores the coefficient on resume.</summary>
    public void Restore(double coef) => Coef = coef;
}
