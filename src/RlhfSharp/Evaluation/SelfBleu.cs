namespace RlhfSharp.Evaluation;

/// <summary>
/// Self-BLEU (Zhu et al. 2018, Texygen): each generated text scored by BLEU against all the other texts as
/// references, averaged. Higher means the samples resemble each other (less diverse). Like Texygen it uses NLTK's
/// sentence BLEU with uniform weights up to <c>maxOrder</c> and <c>SmoothingFunction().method1</c> (ε = 0.1 for empty
/// orders, which is sacreBLEU's floor smoothing); unlike Texygen it splits on whitespace rather than running NLTK's
/// word_tokenize.
/// </summary>
public static class SelfBleu
{
    /// <summary>Mean sentence BLEU of each text against the rest, 0–1; 0 for fewer than two texts.</summary>
    public static double Score(IReadOnlyList<string> texts, int maxOrder = Bleu.MaxOrder)
    {
        if (texts.Count < 2) return 0;
        var tokens = texts.Select(t => (IReadOnlyList<string>)Tokenizer13a.Split(t)).ToList();
        double sum = 0;
        for (int i = 0; i < tokens.Count; i++)
        {
            var others = tokens.Where((_, j) => j != i).ToList();
            var bleu = Bleu.Corpus([tokens[i]], [others], BleuSmoothing.Floor, 0.1, maxOrder: maxOrder);
            // NLTK's corpus_bleu returns 0 outright when no unigram matches, before any smoothing.
            sum += bleu.Matches[0] == 0 ? 0 : bleu.Score / 100;
        }
        return sum / tokens.Count;
    }
}
