using RlhfSharp.Evaluation;

namespace RlhfSharp.Tests.Evaluation;

public sealed class MeteorEvaluationTests
{
    // NLTK nltk/translate/meteor_score.py doctests (NLTK 3.8): the military-guide example sentences.
    static readonly string[] Hypothesis1 = ["It", "is", "a", "guide", "to", "action", "which", "ensures", "that", "the", "military", "always", "obeys", "the", "commands", "of", "the", "party"];
    static readonly string[] Reference1 = ["It", "is", "a", "guide", "to", "action", "that", "ensures", "that", "the", "military", "will", "forever", "heed", "Party", "commands"];
    static readonly string[] Reference2 = ["It", "is", "the", "guiding", "principle", "which", "guarantees", "the", "military", "forces", "always", "being", "under", "the", "command", "of", "the", "Party"];
    static readonly string[] Reference3 = ["It", "is", "the", "practical", "guide", "for", "the", "army", "always", "to", "heed", "the", "directions", "of", "the", "party"];

    static string[] Words(string s) => s.Split(' ');

    [Fact]
    public void Non_matching_hypothesis_scores_zero()
    {
        // NLTK meteor_score.py doctest and nltk/test/meteor.doctest ("John loves Mary"): 0.0.
        Assert.Equal(0.0, Meteor.Score([(IReadOnlyList<string>)["this", "is", "a", "cat"]], ["non", "matching", "hypothesis"]));
        Assert.Equal(0.0, Meteor.Score([(IReadOnlyList<string>)Words("The candidate has no alignment to any of the references")], Words("John loves Mary")));
    }

    [Fact]
    public void Nltk_single_meteor_score_doctest_gives_0_6944()
    {
        // single_meteor_score(reference1, hypothesis1) → 0.6944 (rounded to 4 places in the doctest): 12 matches in 5
        // chunks of 18 hypothesis and 16 reference words.
        double score = Meteor.Single(Reference1, Hypothesis1);
        Assert.Equal(0.6944, Math.Round(score, 4));
        Assert.Equal(0.6944444444444445, score, 1e-15);
    }

    [Fact]
    public void Nltk_meteor_score_doctest_best_of_three_references_gives_0_6944() =>
        Assert.Equal(0.6944, Math.Round(Meteor.Score([Reference1, Reference2, Reference3], Hypothesis1), 4));

    [Fact]
    public void Nltk_unit_test_lowercases_and_scores_0_9921875()
    {
        // nltk/test/unit/translate/test_meteor.py: assert score == 0.9921875 (the second reference is ["this", "istest"]).
        var score = Meteor.Score([(IReadOnlyList<string>)["this", "is", "a", "test"], ["this", "istest"]], ["THIS", "Is", "a", "tEST"]);
        Assert.Equal(0.9921875, score);
    }

    [Fact]
    public void Nltk_meteor_doctest_wikipedia_examples()
    {
        IReadOnlyList<IReadOnlyList<string>> mat = [Words("The cat sat on the mat")];
        // nltk/test/meteor.doctest: identical ≈ 0.9977 (within 1e-2), reordered exactly 0.5, one extra word 0.9654.
        Assert.True(Math.Abs(Math.Round(Meteor.Score(mat, Words("The cat sat on the mat")), 4) - 0.9977) < 1e-2);
        Assert.Equal(0.5, Meteor.Score(mat, Words("on the mat sat the cat")));
        Assert.Equal(0.9654, Math.Round(Meteor.Score(mat, Words("The cat was sat on the mat")), 4));
    }

    [Fact]
    public void Stem_stage_matches_inflections_nltk_issue_2751()
    {
        // nltk/test/meteor.doctest, issue #2751: 0.7806. "creates"/"create" and "updates"/"update" match only by stem.
        var score = Meteor.Score([(IReadOnlyList<string>)Words("create or update a vm set")], Words("creates or updates a virtual machine scale set"));
        Assert.Equal(0.7806, Math.Round(score, 4));
    }

    [Fact]
    public void Synonym_stage_matches_words_sharing_a_wordnet_synset()
    {
        // NLTK's wordnet.doctest: wn.synsets('dog') includes Synset('frump.n.01'), so "dog" and "frump" share a synset.
        // A one-word hypothesis matching its one-word reference scores Fmean 1 minus the penalty 0.5·(1/1)^3 = 0.5;
        // with no WordNet the pair does not match at all. The stages see stems: "dogs" → "dog" still finds "frumps" → "frump".
        IReadOnlyList<IReadOnlyList<string>> frump = [["frump"]];
        Assert.Equal(0.5, Meteor.Score(frump, ["dog"]));
        Assert.Equal(0.5, Meteor.Score([(IReadOnlyList<string>)["frumps"]], ["dogs"]));
        var noSynonyms = WordNet.Load(EmptyWordNet());
        Assert.Equal(0.0, Meteor.Single(["frump"], ["dog"], wordNet: noSynonyms));
        // The doctest pair above needs no synonym: its 12 matches are all exact, so an empty WordNet changes nothing.
        Assert.Equal(Meteor.Single(Reference1, Hypothesis1), Meteor.Single(Reference1, Hypothesis1, wordNet: noSynonyms));
    }

    [Fact]
    public void Hugging_face_evaluate_meteor_example_gives_0_6944()
    {
        // huggingface/evaluate metrics/meteor/meteor.py docstring: meteor.compute(predictions, references) → 0.6944.
        var score = Meteor.Score(["It is a guide to action that ensures that the military will forever heed Party commands"],
            "It is a guide to action which ensures that the military always obeys the commands of the party");
        Assert.Equal(0.6944, Math.Round(score, 4));
        // Its metric card's output example, {'meteor': 0.9999142661179699}: the card's 18-word identical pair.
        var same = "It is a guide to action which ensures that the military always obeys the commands of the party";
        Assert.Equal(0.9999142661179699, Meteor.Score([same], same), 1e-15);
    }

    [Fact]
    public void Exact_matches_give_fmean_times_fragmentation_penalty()
    {
        // Hand-computed from NLTK's formula: hyp "a b c d", ref "a b x c d": 4 matches, P = 1, R = 4/5,
        // Fmean = P·R/(0.9P + 0.1R) = 0.8/0.98; chunks "a b" and "c d" = 2, penalty = 0.5·(2/4)^3 = 0.0625.
        Assert.Equal(0.9375 * 0.8 / 0.98, Meteor.Score(["a b x c d"], "a b c d"), 1e-12);
    }

    [Fact]
    public void Best_reference_wins_and_case_is_ignored()
    {
        // Hand-computed: identical 3-word sentence: P = R = 1, one chunk, penalty 0.5·(1/3)^3 = 1/54.
        Assert.Equal(1 - 1.0 / 54, Meteor.Score(["completely different", "The Cat sat"], "the cat SAT"), 1e-12);
    }

    static string EmptyWordNet()
    {
        var path = Path.Combine(Path.GetTempPath(), $"rlhf-empty-wordnet-{Guid.NewGuid():N}.tsv");
        File.WriteAllText(path, "# no synsets\n");
        return path;
    }
}
