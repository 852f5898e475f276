using RlhfSharp.Evaluation;

namespace RlhfSharp.Tests.Evaluation;

/// <summary>Values from sacreBLEU's test suite, github.com/mjpost/sacrebleu test/test_chrf.py (tolerance 1e-4 as there).</summary>
public sealed class ChrFEvaluationTests
{
    // test_cases: corpus_chrf(char_order=6, word_order=0, beta=3, eps_smoothing=True)
    [Theory]
    [InlineData(new[] { "abcdefg" }, new[] { "hijklmnop" }, 0.0)]
    [InlineData(new[] { "a" }, new[] { "b" }, 0.0)]
    [InlineData(new[] { "" }, new[] { "b" }, 0.0)]
    [InlineData(new[] { "" }, new[] { "reference" }, 0.0)]
    [InlineData(new[] { "aa" }, new[] { "ab" }, 8.3333)]
    [InlineData(new[] { "a", "b" }, new[] { "a", "c" }, 8.3333)]
    [InlineData(new[] { "a" }, new[] { "a" }, 16.6667)]
    [InlineData(new[] { "a b c" }, new[] { "a b c" }, 50.0)]
    [InlineData(new[] { "a b c" }, new[] { "abc" }, 50.0)]
    [InlineData(new[] { " risk assessment must be made of those who are qualified and expertise in the sector - these are the scientists ." },
        new[] { "risk assessment has to be undertaken by those who are qualified and expert in that area - that is the scientists ." }, 63.361730)]
    [InlineData(new[] { " Die    Beziehung zwischen  Obama und Netanjahu ist nicht gerade  freundlich. " },
        new[] { "Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich." }, 64.1302698)]
    [InlineData(new[] { "Niemand hat die Absicht, eine Mauer zu errichten" }, new[] { "Niemand hat die Absicht, eine Mauer zu errichten" }, 100.0)]
    public void Eps_smoothed_chrf_beta3_matches_sacrebleu(string[] hyps, string[] refs, double expected) =>
        Assert.Equal(expected, ChrF.Corpus(hyps, SacreBleu.FromStreams([refs]), beta: 3, epsSmoothing: true), 1e-4);

    // test_cases_effective_order: eps_smoothing=False (sacreBLEU 2.x default mode)
    [Theory]
    [InlineData(new[] { "a" }, new[] { "a" }, 100.0)]
    [InlineData(new[] { "" }, new[] { "reference" }, 0.0)]
    [InlineData(new[] { "a b c" }, new[] { "a b c" }, 100.0)]
    [InlineData(new[] { "a b c" }, new[] { "abc" }, 100.0)]
    [InlineData(new[] { "" }, new[] { "c" }, 0.0)]
    [InlineData(new[] { "a", "b" }, new[] { "a", "c" }, 50.0)]
    [InlineData(new[] { "aa" }, new[] { "ab" }, 25.0)]
    public void Effective_order_chrf_matches_sacrebleu(string[] hyps, string[] refs, double expected) =>
        Assert.Equal(expected, ChrF.Corpus(hyps, SacreBleu.FromStreams([refs]), beta: 3), 1e-4);

    // test_cases_keep_whitespace: remove_whitespace=False
    [Theory]
    [InlineData("Die Beziehung zwischen Obama und Netanjahu ist nicht gerade freundlich.",
        "Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich.", 67.3481606)]
    [InlineData("risk assessment must be made of those who are qualified and expertise in the sector - these are the scientists .",
        "risk assessment has to be undertaken by those who are qualified and expert in that area - that is the scientists .", 65.2414427)]
    public void Keeping_whitespace_matches_sacrebleu(string hyp, string reference, double expected) =>
        Assert.Equal(expected, ChrF.Corpus([hyp], [[reference]], beta: 3, removeWhitespace: false), 1e-4);

    // test_sentence_level_chrf: sentence_chrf with defaults (beta=2) and eps_smoothing=True
    [Theory]
    [InlineData("Co nás nejvíc trápí, protože lékaři si vybírají, kdo bude žít a kdo zemře.",
        "Nejvíce smutní jsme z toho, že musíme rozhodovat o tom, kdo bude žít a kdo zemře.", 39.14078509)]
    [InlineData("Nebo prostě nemají vybavení, které by jim pomohlo, uvedli lékaři.",
        "A někdy nemáme ani potřebný materiál, abychom jim pomohli, popsali lékaři.", 31.22557079)]
    [InlineData("Lapali po dechu, jejich životy skončily dřív, než skutečně začaly.",
        "Lapali po dechu a pak jejich život skončil - dřív, než skutečně mohl začít, připomněli.", 57.15704367)]
    public void Sentence_chrf_matches_sacrebleu(string hyp, string reference, double expected) =>
        Assert.Equal(expected, ChrF.Sentence(hyp, [reference], epsSmoothing: true), 1e-4);
}
