using RlhfSharp.Evaluation;

namespace RlhfSharp.Tests.Evaluation;

/// <summary>Values from sacreBLEU's test suite, github.com/mjpost/sacrebleu test/test_bleu.py, and its README example.</summary>
public sealed class BleuEvaluationTests
{
    // README example, also test_bleu.py's test_corpus_bleu_cases (_hyps, _refs: two reference streams).
    static readonly string[] Hyps = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."];
    static readonly string[][] RefStreams =
    [
        ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
        ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
    ];
    static IReadOnlyList<IReadOnlyList<string>> Refs => SacreBleu.FromStreams(RefStreams);

    [Fact]
    public void Readme_example_gives_48_53_with_default_13a_exp_settings() =>
        Assert.Equal(48.530827, SacreBleu.Corpus(Hyps, Refs).Score, 1e-6);

    [Fact]
    public void Readme_example_without_tokenization_gives_49_19() =>
        Assert.Equal(49.1919566, SacreBleu.Corpus(Hyps, Refs, tokenize: false).Score, 1e-6);

    [Fact]
    public void Readme_example_without_smoothing_is_unchanged() =>
        Assert.Equal(48.530827, SacreBleu.Corpus(Hyps, Refs, smoothing: BleuSmoothing.None).Score, 1e-6);

    [Fact]
    public void Empty_hypotheses_score_zero() =>
        Assert.Equal(0.0, SacreBleu.Corpus(["", "", ""], Refs).Score);

    // test_raw_bleu_cases: raw_corpus_bleu = tokenize none, floor smoothing 0.01, effective order.
    [Theory]
    [InlineData(new[] { "this is a test", "another test" }, new[] { "ref1", "ref2" }, 0.003799178428257963)]
    [InlineData(new[] { "this is a test" }, new[] { "this is a test" }, 1.0)]
    [InlineData(new[] { "this is a fest" }, new[] { "this is a test" }, 0.223606797749979)]
    // test_case_effective_order
    [InlineData(new[] { "test" }, new[] { "a test" }, 0.3678794411714425)]
    [InlineData(new[] { "a test" }, new[] { "a test" }, 1.0)]
    [InlineData(new[] { "a little test" }, new[] { "a test" }, 0.03218297948685433)]
    public void Raw_corpus_bleu_matches_sacrebleu(string[] hyps, string[] refs, double expected)
    {
        var score = SacreBleu.Corpus(hyps, SacreBleu.FromStreams([refs]), tokenize: false, smoothing: BleuSmoothing.Floor, smoothValue: 0.01, effectiveOrder: true);
        Assert.Equal(expected, score.Score / 100, 1e-8);
    }

    [Fact]
    public void Statistics_count_clipped_matches_and_totals()
    {
        // test_case_statistics
        var (m, t, _, _) = Bleu.Statistics([Split("am I am a character sequence")], [[Split("I am a symbol string sequence a a")]]);
        Assert.Equal(new long[] { 4, 2, 1, 0 }, m);
        Assert.Equal(new long[] { 6, 5, 4, 3 }, t);
    }

    [Fact]
    public void Floor_offset_zero_gives_zero_and_default_offset_gives_0_1556()
    {
        // test_case_offset: raw_corpus_bleu with smooth_value 0.0, then with the default floor value 0.1.
        var hyp = new[] { "am I am a character sequence" };
        var refs = SacreBleu.FromStreams([["I am a symbol string sequence a a"]]);
        Assert.Equal(0.0, SacreBleu.Corpus(hyp, refs, tokenize: false, smoothing: BleuSmoothing.Floor, smoothValue: 0.0, effectiveOrder: true).Score);
        Assert.Equal(0.1555722182, SacreBleu.Corpus(hyp, refs, tokenize: false, smoothing: BleuSmoothing.Floor, effectiveOrder: true).Score / 100, 1e-8);
    }

    [Fact]
    public void Scoring_from_statistics_gives_0_8376()
    {
        // test_case_scoring: compute_bleu([9,7,5,3], [10,8,6,4], 11, 11) with the default exp smoothing.
        Assert.Equal(0.8375922397, Bleu.Compute([9, 7, 5, 3], [10, 8, 6, 4], 11, 11).Score / 100, 1e-8);
    }

    [Theory]
    // test_case_degenerate_stats (floor smoothing with the given offset): all score exactly 0.
    [InlineData(new long[] { 0, 0, 0, 0 }, new long[] { 4, 4, 2, 1 }, 0, 1, 0.0)]
    [InlineData(new long[] { 0, 0, 0, 0 }, new long[] { 10, 11, 12, 0 }, 14, 10, 0.0)]
    [InlineData(new long[] { 0, 0, 0, 0 }, new long[] { 0, 0, 0, 0 }, 0, 0, 0.0)]
    [InlineData(new long[] { 6, 5, 4, 0 }, new long[] { 6, 5, 4, 3 }, 6, 6, 0.0)]
    [InlineData(new long[] { 0, 0, 0, 0 }, new long[] { 0, 0, 0, 0 }, 0, 0, 0.1)]
    [InlineData(new long[] { 0, 0, 0, 0 }, new long[] { 0, 0, 0, 0 }, 1, 5, 0.01)]
    public void Degenerate_statistics_score_zero(long[] matches, long[] totals, long sysLen, long refLen, double offset) =>
        Assert.Equal(0.0, Bleu.Compute(matches, totals, sysLen, refLen, BleuSmoothing.Floor, offset).Score / 100);

    [Theory]
    // Hand-checked against mteval-v13a's rules (sacrebleu tokenizer_13a.py): punctuation split (not the apostrophe), except periods and
    // commas inside numbers; a dash after a digit is split.
    [InlineData("It wasn't surprising.", "It wasn't surprising .")]
    [InlineData("Costs 1,000.50 dollars, 3-4 days", "Costs 1,000.50 dollars , 3 - 4 days")]
    [InlineData("a &amp; b &quot;c&quot;", "a & b \" c \"")]
    public void Tokenizer_13a_splits_like_mteval(string input, string expected) =>
        Assert.Equal(expected, Tokenizer13a.Tokenize(input));

    static string[] Split(string s) => s.Split(' ');
}
