using RlhfSharp.Evaluation;

namespace RlhfSharp.Tests.Evaluation;

/// <summary>distinct-n (Li et al. 2016) and self-BLEU (Zhu et al. 2018): hand-computed from their definitions.</summary>
public sealed class DiversityEvaluationTests
{
    [Fact]
    public void Distinct_counts_unique_ngrams_over_all_ngrams_of_the_corpus()
    {
        // Unigrams: the cat sat | the cat ran → 6 total, {the, cat, sat, ran} = 4 → 4/6.
        // Bigrams: "the cat" ×2, "cat sat", "cat ran" → 4 total, 3 distinct → 3/4.
        string[] texts = ["the cat sat", "the cat ran"];
        Assert.Equal(4.0 / 6, Distinct.N(texts, 1), 1e-12);
        Assert.Equal(3.0 / 4, Distinct.N(texts, 2), 1e-12);
        Assert.Equal(0.0, Distinct.N(["one"], 2));
    }

    [Fact]
    public void Self_bleu_is_one_for_identical_texts_and_zero_without_shared_words()
    {
        Assert.Equal(1.0, SelfBleu.Score(["a b c d e", "a b c d e", "a b c d e"]), 1e-12);
        // NLTK's corpus_bleu returns 0 when no unigram matches, whatever the smoothing.
        Assert.Equal(0.0, SelfBleu.Score(["a b c d", "e f g h"]));
    }

    [Fact]
    public void Self_bleu_uses_method1_smoothing_for_empty_orders()
    {
        // "a b c d" against "a b x y": p1 = 2/4, p2 = 1/3, p3 = 0.1/2, p4 = 0.1/1 (ε = 0.1), equal lengths → BP 1.
        // Both texts score the same by symmetry.
        double expected = Math.Pow(0.5 * (1.0 / 3) * 0.05 * 0.1, 0.25);
        Assert.Equal(expected, SelfBleu.Score(["a b c d", "a b x y"]), 1e-12);
    }
}
