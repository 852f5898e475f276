using RlhfSharp.Generation;
using RlhfSharp.Tests.Tokenization;

namespace RlhfSharp.Tests.Generation;

/// <summary>
/// The stop check reads only what each token adds (vLLM's incremental detokenisation); what it reads must be the
/// whole-row decode, also where a character is split across byte tokens.
/// </summary>
public class StopStringCheckTests
{
    [Fact]
    public void Incremental_pieces_add_up_to_the_whole_decode_at_every_step()
    {
        var tokenizer = Stories260K.Tokenizer();
        // é and ☃ are not in the 512-piece vocabulary: they come as 2 and 3 byte tokens.
        var ids = tokenizer.Encode("Tom saw a café ☃ and said: hello.");
        Assert.Contains(ids, id => tokenizer.Decode([id]).Contains('\uFFFD')); // a character split across tokens
        var decoder = new IncrementalDecoder(tokenizer);
        var tokens = new List<int>();
        string text = "";
        foreach (int id in ids)
        {
            tokens.Add(id);
            text += decoder.Next(tokens);
            Assert.Equal(tokenizer.Decode(tokens).TrimEnd('\uFFFD'), text);
        }
        Assert.Equal(tokenizer.Decode(ids), text);
        Assert.Contains("☃", text);
    }

    [Theory]
    [InlineData("café", true)]
    [InlineData("☃ and", true)]
    [InlineData(": hello.", true)]
    [InlineData("hello!", false)]
    public void A_stop_string_split_across_tokens_is_found_at_the_token_that_completes_it(string stop, bool found)
    {
        var tokenizer = Stories260K.Tokenizer();
        var ids = tokenizer.Encode("Tom saw a café ☃ and said: hello.");
        var check = new StopStringCheck(tokenizer, ["", stop], rows: 1);
        var tokens = new List<int>();
        int? hitAt = null;
        for (int t = 0; t < ids.Length && hitAt is null; t++)
        {
            tokens.Add(ids[t]);
            if (check.Hits(0, tokens)) hitAt = t + 1;
        }
        // The first prefix whose whole decode contains the stop string, found by decoding every prefix.
        int? expected = Enumerable.Range(1, ids.Length).Cast<int?>().FirstOrDefault(n => tokenizer.Decode(ids[..n!.Value]).Contains(stop, StringComparison.Ordinal));
        Assert.Equal(found, expected is not null);
        Assert.Equal(expected, hitAt);
    }
}
