namespace RlhfSharp.Rewards;

/// <summary>
/// One simulated labeller. It judges a response by a utility u = gold + <see cref="LengthBias"/> · (words / 100)
/// and chooses noisily: P(a ≻ b) = σ((u_a − u_b)/τ) (Bradley–Terry), and ranks by sampling a Plackett–Luce ranking
/// with the same temperature (for two responses the two coincide). τ = 0 chooses the higher utility (ties: first).
/// Its randomness is its own seeded <see cref="Random"/>: the same seed and calls give the same choices.
/// </summary>
public sealed class SimulatedAnnotator
{
    readonly Random random;

    public SimulatedAnnotator(int id, double temperature, double lengthBias = 0, int seed = 0)
    {
        if (double.IsNaN(temperature) || temperature < 0) throw new RlhfException($"annotator temperature must be ≥ 0, got {temperature}.");
        Id = id;
        Temperature = temperature;
        LengthBias = lengthBias;
        Seed = seed;
        random = new Random(seed);
    }

    public int Id { get; }
    /// <summary>τ: the gold-score difference at which the better response wins with probability σ(1) ≈ 0.73.</summary>
    public double Temperature { get; }
    /// <summary>A personal taste for longer (&gt; 0) or shorter (&lt; 0) responses, in gold points per 100 words.</summary>
    public double LengthBias { get; }
    public int Seed { get; }

    /// <summary>What this annotator believes a response is worth.</summary>
    public double Utility(double gold, string response) =>
        LengthBias == 0 ? gold : gold + LengthBias * Words.Tokenize(response).Length / 100.0;

    /// <summary>0 when the first utility's response is preferred, 1 for the second.</summary>
    public int Choose(double utilityA, double utilityB)
    {
        if (Temperature == 0) return utilityB > utilityA ? 1 : 0;
        return random.NextDouble() < Sigmoid((utilityA - utilityB) / Temperature) ? 0 : 1;
    }

    /// <summary>A Plackett–Luce ranking, best first: repeatedly pick among the rest with probability ∝ exp(u/τ).</summary>
    public int[] Rank(IReadOnlyList<double> utilities)
    {
        var rest = Enumerable.Range(0, utilities.Count).ToList();
        var ranking = new int[utilities.Count];
        for (int r = 0; r < ranking.Length; r++)
        {
            int k = PickFrom(rest.Select(i => utilities[i]).ToArray());
            ranking[r] = rest[k];
            rest.RemoveAt(k);
        }
        return ranking;
    }

    /// <summary>The first choice of a Plackett–Luce ranking: index i with probability softmax(u/τ)ᵢ.</summary>
    public int PickBest(IReadOnlyList<double> utilities)
    {
        if (utilities.Count == 0) throw new RlhfException("no candidates to pick from.");
        return PickFrom(utilities.ToArray());
    }

    int PickFrom(double[] u)
    {
        int best = 0;
        for (int i = 1; i < u.Length; i++) if (u[i] > u[best]) best = i;
        if (Temperature == 0 || u.Length == 1) return best;
        // Softmax with the max subtracted so exp never overflows.
        var weights = u.Select(x => Math.Exp((x - u[best]) / Temperature)).ToArray();
        double draw = random.NextDouble() * weights.Sum();
        for (int i = 0; i < weights.Length; i++)
        {
            draw -= weights[i];
            if (draw < 0) return i;
        }
        return weights.Length - 1;
    }

    internal static double Sigmoid(double x) => x >= 0 ? 1 / (1 + Math.Exp(-x)) : Math.Exp(x) / (1 + Math.Exp(x));
}
