using RlhfSharp.Labeling;

namespace RlhfSharp.Tests.Labeling;

public class AgreementTests
{
    // Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the worked example: 4 observers, 12 units, values
    // 1..5 with missing ones. The paper's answers: nominal 0.743, ordinal 0.815, interval 0.849.
    static readonly double?[][] Observers =
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, null, null, null],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, null, 3],
        [null, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, null],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, null],
    ];

    static IReadOnlyList<double>[] Units() => Enumerable.Range(0, 12)
        .Select(u => (IReadOnlyList<double>)Observers.Where(o => o[u] is not null).Select(o => o[u]!.Value).ToList()).ToArray();

    [Theory]
    [InlineData(AlphaMetric.Nominal, 0.743)]
    [InlineData(AlphaMetric.Ordinal, 0.815)]
    [InlineData(AlphaMetric.Interval, 0.849)]
    public void Alpha_matches_Krippendorffs_worked_example(AlphaMetric metric, double expected) =>
        Assert.Equal(expected, KrippendorffAlpha.Compute(Units(), metric), 3);

    [Fact]
    public void Alpha_is_one_for_identical_rankings_and_undefined_without_pairable_values()
    {
        Assert.Equal(1.0, KrippendorffAlpha.Compute([[1, 1], [2, 2], [3, 3]], AlphaMetric.Ordinal), 12);
        Assert.True(double.IsNaN(KrippendorffAlpha.Compute([[1], [2]], AlphaMetric.Ordinal)));
    }

    [Fact]
    public void Pairwise_and_majority_agreement_count_response_pairs()
    {
        // Item 1, responses 10, 11, 12. Annotators 1 and 2 agree fully; annotator 3 swaps the top two.
        var labels = new List<RankedLabel>
        {
            new(1, 1, [10, 11, 12]),
            new(1, 2, [10, 11, 12]),
            new(1, 3, [11, 10, 12]),
        };
        var report = RankingAgreement.Compute(labels);
        // 3 response pairs × 3 annotator pairs = 9 comparisons; (10,11) is disputed in 2 of its 3 annotator pairs.
        Assert.Equal(9, report.PairwiseComparisons);
        Assert.Equal(7.0 / 9, report.PairwiseAgreement, 12);
        // Leave-one-out majority: annotators 1 and 2 face a 1–1 tie on (10,11), skipped, and agree on the other two pairs;
        // annotator 3 faces a 2–0 majority on all three and agrees on two.
        var m = report.PerAnnotator.ToDictionary(x => x.AnnotatorId);
        Assert.Equal((1.0, 2), (m[1].Agreement, m[1].Comparisons));
        Assert.Equal((2.0 / 3, 3), (m[3].Agreement, m[3].Comparisons));
        Assert.InRange(report.Alpha, 0.0, 1.0);
    }

    [Fact]
    public void Opposite_rankings_give_negative_alpha_and_zero_agreement()
    {
        var report = RankingAgreement.Compute([new(1, 1, [1, 2, 3, 4]), new(1, 2, [4, 3, 2, 1]), new(2, 1, [5, 6]), new(2, 2, [6, 5])]);
        Assert.Equal(0.0, report.PairwiseAgreement);
        Assert.True(report.Alpha < 0, $"alpha {report.Alpha}");
    }
}
