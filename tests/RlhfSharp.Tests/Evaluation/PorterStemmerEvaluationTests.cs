using RlhfSharp.Evaluation;

namespace RlhfSharp.Tests.Evaluation;

public sealed class PorterStemmerEvaluationTests
{
    [Fact]
    public void Nltk_stem_doctest_plurals_stem_as_published()
    {
        // nltk/test/stem.doctest, "Unit tests for the Porter stemmer" (default NLTK_EXTENSIONS mode).
        string[] plurals = ["caresses", "flies", "dies", "mules", "denied", "died", "agreed", "owned", "humbled", "sized",
            "meeting", "stating", "siezing", "itemization", "sensational", "traditional", "reference", "colonizer", "plotted"];
        Assert.Equal("caress fli die mule deni die agre own humbl size meet state siez item sensat tradit refer colon plot",
            string.Join(' ', plurals.Select(PorterStemmer.Stem)));
    }

    [Fact]
    public void Nltk_unit_tests_oed_bug_and_lowercasing()
    {
        // nltk/test/unit/test_stem.py: test_oed_bug and test_lowercase_option (default to_lowercase=True).
        Assert.Equal("o", PorterStemmer.Stem("oed"));
        Assert.Equal("on", PorterStemmer.Stem("On"));
        Assert.Equal("i", PorterStemmer.Stem("I"));
        Assert.Equal("github", PorterStemmer.Stem("Github"));
    }

    [Fact]
    public void Nltk_extensions_irregular_forms_and_short_ie_words()
    {
        // NLTK_EXTENSIONS per nltk/stem/porter.py's documentation: the irregular-forms table ("dying" → "die",
        // "skies" → "sky"), "ies"/"ied" on four-letter words → "ie" ("ties" → "tie", "died" → "die" but "spied" → "spi"),
        // and y → i only after a consonant that is not the whole stem ("happy" → "happi", "enjoy" → "enjoy").
        Assert.Equal(["die", "sky", "tie", "spi", "happi", "enjoy", "news"],
            new[] { "dying", "skies", "ties", "spied", "happy", "enjoy", "news" }.Select(PorterStemmer.Stem));
    }
}
