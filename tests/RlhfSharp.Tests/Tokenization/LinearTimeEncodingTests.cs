using RlhfSharp.Tokenization;

namespace RlhfSharp.Tests.Tokenization;

/// <summary>
/// Issue #16 §1: encoding is near-linear. The merge queue must give exactly what llama2.c's greedy rescan gives (the
/// reference is written out here, as run.c has it), and its work, counted in queue operations rather than time, must
/// grow linearly with the length of a run of one letter, the input that made the rescan quadratic.
/// </summary>
public sealed class LinearTimeEncodingTests
{
    /// <summary>run.c's encode loop: repeatedly merge the best-scoring pair, the leftmost among equal scores.</summary>
    private static List<int> GreedyRescan(Llama2cTokenizer tokenizer, string text)
    {
        var ids = new Dictionary<string, int>();
        for (int i = 0; i < tokenizer.Pieces.Count; i++) ids.TryAdd(tokenizer.Pieces[i], i);
        var tokens = new List<int>();
        foreach (var rune in (" " + text).EnumerateRunes())
        {
            if (ids.TryGetValue(rune.ToString(), out int id)) tokens.Add(id);
            else foreach (var b in System.Text.Encoding.UTF8.GetBytes(rune.ToString())) tokens.Add(b + 3);
        }
        while (true)
        {
            float best = -1e10f;
            int bestId = -1, bestIndex = -1;
            for (int i = 0; i < tokens.Count - 1; i++)
            {
                if (ids.TryGetValue(tokenizer.Pieces[tokens[i]] + tokenizer.Pieces[tokens[i + 1]], out int merged) && tokenizer.Scores[merged] > best)
                {
                    best = tokenizer.Scores[merged];
                    bestId = merged;
                    bestIndex = i;
                }
            }
            if (bestIndex < 0) return tokens;
            tokens[bestIndex] = bestId;
            tokens.RemoveAt(bestIndex + 1);
        }
    }

    [Theory]
    [InlineData("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]
    [InlineData("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee ee eee eeee")]
    [InlineData("lllllllllllllllllllllllllllllll                  ooooooooooooooo")]
    [InlineData("Once upon a time, there was a little girl named Lily. She loved to play outside!")]
    [InlineData("  two  spaces   three    four\n\nnewlines\tand tabs 😀 ünïcödé")]
    public void Queue_merges_give_exactly_the_greedy_rescan_of_run_c(string text)
    {
        var tokenizer = Stories260K.Tokenizer();
        Assert.Equal(GreedyRescan(tokenizer, text), tokenizer.Encode(text));
    }

    [Fact]
    public void Random_texts_over_a_small_alphabet_match_the_greedy_rescan()
    {
        var tokenizer = Stories260K.Tokenizer();
        var random = new Random(7);
        const string alphabet = "aeilnost  .";
        for (int trial = 0; trial < 200; trial++)
        {
            var text = new string(Enumerable.Range(0, random.Next(1, 60)).Select(_ => alphabet[random.Next(alphabet.Length)]).ToArray());
            Assert.Equal(GreedyRescan(tokenizer, text), tokenizer.Encode(text));
        }
    }

    [Fact]
    public void Merge_work_on_a_run_of_one_letter_grows_linearly_with_its_length()
    {
        long WorkFor(int n)
        {
            var tokenizer = Stories260K.Tokenizer(); // fresh: no cache, counter at zero; "ll" is one of its pieces
            tokenizer.Encode(new string('l', n));
            return tokenizer.MergeWork;
        }
        long small = WorkFor(2_000), large = WorkFor(32_000);
        Assert.True(small > 0);
        // 16× the length: linear work is ~16×; the old rescan did ~256× (it rescanned the whole word per merge).
        Assert.InRange((double)large / small, 12.0, 20.0);
    }

    [Fact]
    public void Merge_work_of_a_byte_level_tokenizer_grows_linearly_on_one_long_word()
    {
        using var files = new RealTokenizerFiles();
        long WorkFor(int n)
        {
            var tokenizer = HfTokenizer.Load(files.Folder("gpt2"));
            tokenizer.Encode(new string('a', n));
            return tokenizer.MergeWork;
        }
        long small = WorkFor(2_000), large = WorkFor(32_000);
        Assert.True(small > 0);
        Assert.InRange((double)large / small, 12.0, 20.0);
    }

    [Fact]
    public void Bpe_merge_takes_the_lowest_priority_first_and_the_leftmost_on_ties()
    {
        // Symbols 1 1 1: the pair (1,1) merges to 2 at priority 0; (2,1) to 3 at priority 1; (1,2) to 4 at priority 1.
        // Leftmost (1,1) first gives 2 1, then (2,1) gives 3. Taking the right pair first would give 1 2 then 4.
        bool Lookup(int left, int right, out int priority, out int merged)
        {
            (priority, merged) = (left, right) switch { (1, 1) => (0, 2), (2, 1) => (1, 3), (1, 2) => (1, 4), _ => (0, -1) };
            return merged >= 0;
        }
        var symbols = new[] { 1, 1, 1 };
        int count = BpeMerge.Merge(symbols, Lookup, out _);
        Assert.Equal([3], symbols[..count]);
    }
}
