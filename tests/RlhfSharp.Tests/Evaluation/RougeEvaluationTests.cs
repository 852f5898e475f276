using RlhfSharp.Evaluation;

namespace RlhfSharp.Tests.Evaluation;

/// <summary>
/// Values from Google's rouge-score tests, github.com/google-research/google-research rouge/rouge_scorer_test.py
/// (scorer.score(target, prediction)). The ROUGE-1.5.5 comparisons there read data files we do not copy.
/// </summary>
public sealed class RougeEvaluationTests
{
    static void Equal(RougeScore s, double p, double r, double f, int places = 7)
    {
        double tol = Math.Pow(10, -places);
        Assert.Equal(p, s.Precision, tol);
        Assert.Equal(r, s.Recall, tol);
        Assert.Equal(f, s.FMeasure, tol);
    }

    [Fact] public void Rouge1() => Equal(Rouge.N("testing one two", "testing", 1), 1, 1.0 / 3, 1.0 / 2);                // testRouge1
    [Fact] public void Rouge2() => Equal(Rouge.N("testing one two", "testing one", 2), 1, 1.0 / 2, 2.0 / 3);            // testRouge2
    [Fact] public void RougeL_consecutive() => Equal(Rouge.L("testing one two", "testing one"), 1, 2.0 / 3, 4.0 / 5);   // testRougeLConsecutive
    [Fact] public void RougeL_non_consecutive() => Equal(Rouge.L("testing one two", "testing two"), 1, 2.0 / 3, 4.0 / 5); // testRougeLNonConsecutive

    [Fact]
    public void Empty_prediction_scores_zero()
    {
        // testRougeEmpty
        Equal(Rouge.N("testing one two", "", 1), 0, 0, 0);
        Equal(Rouge.N("testing one two", "", 2), 0, 0, 0);
        Equal(Rouge.L("testing one two", ""), 0, 0, 0);
        Equal(Rouge.Lsum("testing one two", ""), 0, 0, 0);
    }

    [Fact]
    public void RougeLsum_uses_union_lcs_over_sentences()
    {
        // testRougeLsum (Lin 2004 §3.2 example): recall 4/5, precision 4/10, F 0.5333.
        Equal(Rouge.Lsum("w1 w2 w3 w4 w5", "w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5"), 0.4, 0.8, 0.5333, places: 3);
        Equal(Rouge.Lsum("w1 w2 w3 w4 w5", ""), 0, 0, 0);
        Equal(Rouge.Lsum("", "w1"), 0, 0, 0);
        Equal(Rouge.Lsum("w1 w2 w3 w4 w5", "/"), 0, 0, 0);
    }

    [Fact]
    public void Tokenizer_lowercases_and_splits_on_non_alphanumerics() =>
        Assert.Equal(["hello", "world", "it", "s", "42"], Rouge.Tokenize("Hello, WORLD! It's 42."));
}
