using RlhfSharp.Evaluation;

namespace RlhfSharp.Tests.Evaluation;

public sealed class WordNetEvaluationTests
{
    static string? FirstMorphy(string form) =>
        WordNet.PartsOfSpeech.SelectMany(p => WordNet.Default.Morphy(form, p)).FirstOrDefault();

    [Fact]
    public void Nltk_wordnet_doctest_synsets_of_dog()
    {
        // nltk/test/wordnet.doctest: wn.synsets('dog') lists 8 synsets, 7 nouns then chase.v.01; dog.n.01's lemma names
        // are dog, domestic_dog, Canis_familiaris (NLTK's Synset docs), and frump.n.01 is the second.
        var synsets = WordNet.Default.Synsets("dog");
        Assert.Equal(8, synsets.Count);
        Assert.Equal(["dog", "domestic_dog", "Canis_familiaris"], WordNet.Default.LemmaNames(synsets[0]));
        Assert.Equal("frump", WordNet.Default.LemmaNames(synsets[1])[0]);
        Assert.Equal("chase", WordNet.Default.LemmaNames(synsets[7])[0]);
        Assert.Equal(117_659, WordNet.Default.SynsetCount); // WordNet 3.0: 82,115 noun + 13,767 verb + 18,156 adj + 3,621 adv
    }

    [Fact]
    public void Nltk_wordnet_doctest_morphy_examples()
    {
        // nltk/test/wordnet.doctest "Look up forms not in WordNet, with the help of Morphy".
        Assert.Empty(WordNet.Default.Morphy("denied", 'n'));
        Assert.Equal(["deny"], WordNet.Default.Morphy("denied", 'v'));
        Assert.Equal("dog", FirstMorphy("dogs"));
        Assert.Equal("church", FirstMorphy("churches"));
        Assert.Equal("aardwolf", FirstMorphy("aardwolves"));
        Assert.Equal("abacus", FirstMorphy("abaci"));
        Assert.Equal(["book"], WordNet.Default.Morphy("book", 'n'));
        Assert.Empty(WordNet.Default.Morphy("hardrock", 'r'));
        Assert.Empty(WordNet.Default.Morphy("book", 'a'));
        Assert.Empty(WordNet.Default.Morphy("his", 'n'));
        // Same doctest: wn.synsets('denied', wn.NOUN) == []; bug 85: wn.synsets('book', wn.NOUN) has 11, ADJ none;
        // wn.synsets('dog', pos=wn.VERB) == [Synset('chase.v.01')].
        Assert.Empty(WordNet.Default.Synsets("denied", 'n'));
        Assert.Equal(11, WordNet.Default.Synsets("book", 'n').Count);
        Assert.Empty(WordNet.Default.Synsets("book", 'a'));
        Assert.Equal("chase", WordNet.Default.LemmaNames(Assert.Single(WordNet.Default.Synsets("dog", 'v')))[0]);
    }

    [Fact]
    public void Malformed_line_names_file_and_line()
    {
        var path = Path.Combine(Path.GetTempPath(), $"rlhf-bad-wordnet-{Guid.NewGuid():N}.tsv");
        File.WriteAllText(path, "S\tn\tdog\nI\tn\tdog\t7\n");
        var error = Assert.Throws<RlhfException>(() => WordNet.Load(path));
        Assert.Contains($"{path} line 2", error.Message);
    }
}
