using System.Text.Json;
using RlhfSharp.Evaluation;

namespace RlhfSharp.Tests.Evaluation;

/// <summary>
/// Reward-model evaluation numbers against fixtures/rm_eval/expected.json, written by generate_expected.py (plain Python
/// from the definitions: RewardBench's chosen &gt; rejected, Bai et al.'s two-orientation calibration), not by this code.
/// </summary>
public sealed class RewardModelAccuracyTests
{
    static readonly JsonElement Fixture = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "rm_eval", "expected.json"))).RootElement;

    static RewardModelReport Report()
    {
        var groups = Fixture.GetProperty("groups").EnumerateArray().Select(g => new ScoredRanking(
            g.GetProperty("scores").EnumerateArray().Select(x => x.GetDouble()).ToList(),
            g.GetProperty("subset").ValueKind == JsonValueKind.Null ? null : g.GetProperty("subset").GetString())).ToList();
        return RewardModelAccuracy.Compute(groups, Fixture.GetProperty("bins").GetInt32());
    }

    static JsonElement Expected => Fixture.GetProperty("expected");

    [Fact]
    public void Pair_accuracy_and_mean_margin_count_every_pair_of_every_group_and_a_tie_as_wrong()
    {
        var r = Report();
        Assert.Equal(Expected.GetProperty("pairs").GetInt32(), r.Pairs);
        Assert.Equal(Expected.GetProperty("ties").GetInt32(), r.Ties);
        Assert.Equal(Expected.GetProperty("accuracy").GetDouble(), r.Accuracy, 1e-12);
        Assert.Equal(Expected.GetProperty("mean_margin").GetDouble(), r.MeanMargin, 1e-12);
    }

    [Fact]
    public void Accuracy_by_subset_follows_the_subset_column_in_first_seen_order()
    {
        var r = Report();
        var expected = Expected.GetProperty("by_subset").EnumerateArray().ToList();
        Assert.Equal(expected.Select(e => e.GetProperty("subset").GetString()), r.BySubset.Select(s => s.Subset));
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].GetProperty("pairs").GetInt32(), r.BySubset[i].Pairs);
            Assert.Equal(expected[i].GetProperty("accuracy").GetDouble(), r.BySubset[i].Accuracy, 1e-12);
            Assert.Equal(expected[i].GetProperty("mean_margin").GetDouble(), r.BySubset[i].MeanMargin, 1e-12);
        }
    }

    [Fact]
    public void K_wise_rankings_report_pair_accuracy_exact_order_and_top1()
    {
        var r = Report();
        Assert.Equal(Expected.GetProperty("rankings").GetInt32(), r.Rankings);
        Assert.Equal(Expected.GetProperty("ranking_pair_accuracy").GetDouble(), r.RankingPairAccuracy, 1e-12);
        Assert.Equal(Expected.GetProperty("ranking_exact_match").GetDouble(), r.RankingExactMatch, 1e-12);
        Assert.Equal(Expected.GetProperty("ranking_top1").GetDouble(), r.RankingTop1, 1e-12);
    }

    [Fact]
    public void Calibration_table_bins_sigmoid_of_the_margin_in_both_orders()
    {
        var r = Report();
        var bins = Expected.GetProperty("calibration").EnumerateArray().ToList();
        Assert.Equal(bins.Count, r.Calibration.Count);
        for (int b = 0; b < bins.Count; b++)
        {
            Assert.Equal(bins[b].GetProperty("count").GetInt32(), r.Calibration[b].Count);
            if (bins[b].GetProperty("count").GetInt32() == 0) { Assert.True(double.IsNaN(r.Calibration[b].Observed)); continue; }
            Assert.Equal(bins[b].GetProperty("mean_predicted").GetDouble(), r.Calibration[b].MeanPredicted, 1e-12);
            Assert.Equal(bins[b].GetProperty("observed").GetDouble(), r.Calibration[b].Observed, 1e-12);
        }
        Assert.Equal(Expected.GetProperty("ece").GetDouble(), r.ExpectedCalibrationError, 1e-12);
    }

    [Fact]
    public void Accuracy_against_a_gold_order_skips_pairs_tied_in_gold()
    {
        var t = Fixture.GetProperty("against_truth");
        List<IReadOnlyList<double>> Read(string key) => t.GetProperty(key).EnumerateArray()
            .Select(g => (IReadOnlyList<double>)g.EnumerateArray().Select(x => x.GetDouble()).ToList()).ToList();
        var (accuracy, pairs) = RewardModelAccuracy.AgainstTruth(Read("scores"), Read("truth"));
        Assert.Equal(t.GetProperty("pairs").GetInt32(), pairs);
        Assert.Equal(t.GetProperty("accuracy").GetDouble(), accuracy, 1e-12);
    }

    [Fact]
    public void A_group_with_one_response_is_refused()
    {
        var e = Assert.Throws<RlhfException>(() => RewardModelAccuracy.Compute([new ScoredRanking([1.0])]));
        Assert.Contains("at least 2", e.Message);
    }
}
