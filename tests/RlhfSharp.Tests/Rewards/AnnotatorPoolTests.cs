using System.Globalization;
using RlhfSharp.Rewards;

namespace RlhfSharp.Tests.Rewards;

public class AnnotatorPoolTests
{
    /// <summary>A stand-in gold: the completion text is its own score.</summary>
    sealed class NumberGold : IRewardFunction
    {
        public string Name => "number";
        public double[] Score(IReadOnlyList<string> prompts, IReadOnlyList<string> completions) =>
            completions.Select(c => double.Parse(c, CultureInfo.InvariantCulture)).ToArray();
    }

    static string S(double x) => x.ToString("R", CultureInfo.InvariantCulture);

    static List<(double A, double B)> SyntheticPairs(int count, int seed)
    {
        var r = new Random(seed);
        double Normal() => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());
        return Enumerable.Range(0, count).Select(_ => (Normal(), Normal())).ToList();
    }

    [Fact]
    public void Calibrated_annotators_agree_with_gold_about_73_percent()
    {
        var pairs = SyntheticPairs(2000, seed: 42);
        double tau = AnnotatorPool.Calibrate(pairs, 0.73);
        Assert.Equal(0.73, AnnotatorPool.ExpectedAgreement(pairs, tau), 6);
        var pool = new AnnotatorPool(new NumberGold(), new AnnotatorPoolConfig { Temperature = tau, Seed = 3 });
        Assert.InRange(pool.GoldAgreement(pairs), 0.70, 0.76);
    }

    [Fact]
    public void Calibration_temperature_scales_with_the_gold()
    {
        var pairs = SyntheticPairs(500, seed: 1);
        double tau = AnnotatorPool.Calibrate(pairs);
        double tau10 = AnnotatorPool.Calibrate(pairs.Select(p => (10 * p.A, 10 * p.B)).ToList());
        Assert.Equal(10 * tau, tau10, 6);
        Assert.True(AnnotatorPool.Calibrate(pairs, 0.9) < tau);
        Assert.Throws<RlhfException>(() => AnnotatorPool.Calibrate([(1.0, 1.0)]));
    }

    [Fact]
    public void Same_seed_gives_same_choices_rankings_and_picks()
    {
        var config = new AnnotatorPoolConfig { Temperature = 0.5, Seed = 11, LengthBiasStd = 0.1 };
        var gold = new NumberGold();
        var r = new Random(0);
        var a = Enumerable.Range(0, 200).Select(_ => S(r.NextDouble())).ToArray();
        var b = Enumerable.Range(0, 200).Select(_ => S(r.NextDouble())).ToArray();
        var prompts = Enumerable.Repeat("p", 200).ToArray();
        string[] candidates = ["0.1", "0.5", "0.3", "0.9", "0.2"];

        (int[], int[], int) Run(AnnotatorPool pool) => (pool.ChoosePairs(prompts, a, b), pool.Rank("p", candidates), pool.PickBest("p", candidates));
        var first = Run(new AnnotatorPool(gold, config));
        var again = Run(new AnnotatorPool(gold, config));
        var other = Run(new AnnotatorPool(gold, config with { Seed = 12 }));
        Assert.Equal(first.Item1, again.Item1);
        Assert.Equal(first.Item2, again.Item2);
        Assert.Equal(first.Item3, again.Item3);
        Assert.NotEqual(first.Item1, other.Item1);
    }

    [Fact]
    public void Choice_frequency_is_the_bradley_terry_probability()
    {
        var pool = new AnnotatorPool(new NumberGold(), new AnnotatorPoolConfig { Temperature = 1.0, Seed = 5 });
        int n = 4000;
        int firstChosen = pool.ChoosePairs(Enumerable.Repeat("p", n).ToArray(), Enumerable.Repeat("1", n).ToArray(), Enumerable.Repeat("0", n).ToArray())
            .Count(c => c == 0);
        Assert.InRange(firstChosen / (double)n, 1 / (1 + Math.Exp(-1)) - 0.025, 1 / (1 + Math.Exp(-1)) + 0.025); // σ(1) ≈ 0.731
    }

    [Fact]
    public void Pick_best_frequency_is_the_softmax_and_rank_is_a_permutation()
    {
        var annotator = new SimulatedAnnotator(0, temperature: 1.0, seed: 9);
        double[] u = [0, Math.Log(3)]; // softmax: 1/4, 3/4
        int n = 4000;
        int second = Enumerable.Range(0, n).Count(_ => annotator.PickBest(u) == 1);
        Assert.InRange(second / (double)n, 0.75 - 0.025, 0.75 + 0.025);

        var ranking = annotator.Rank([0.3, 0.1, 0.9, 0.5]);
        Assert.Equal([0, 1, 2, 3], ranking.Order());
    }

    [Fact]
    public void Zero_temperature_follows_the_gold_exactly()
    {
        var pool = new AnnotatorPool(new NumberGold(), new AnnotatorPoolConfig { Temperature = 0, Seed = 1 });
        Assert.Equal(1, pool.ChoosePair("p", "0.2", "0.7"));
        Assert.Equal([3, 1, 2, 0], pool.Rank("p", ["0.1", "0.5", "0.3", "0.9"]));
        Assert.Equal(3, pool.PickBest("p", ["0.1", "0.5", "0.3", "0.9"]));
        Assert.Equal(1.0, pool.GoldAgreement(SyntheticPairs(100, 2)));
    }
}
