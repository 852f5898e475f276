using RlhfSharp.Tokenization;

namespace RlhfSharp.Tests.Tokenization;

public class Llama2cTokenizerTests
{
    private readonly Llama2cTokenizer _tok = Stories260K.Tokenizer();

    [Fact]
    public void Reads_512_pieces_with_bos_eos_and_byte_pieces_where_the_format_puts_them()
    {
        Assert.Equal(512, _tok.VocabSize);
        Assert.Equal("\n<s>\n", _tok.Pieces[1]);
        Assert.Equal("\n</s>\n", _tok.Pieces[2]);
        Assert.Equal("<0x00>", _tok.Pieces[3]);
        Assert.Equal("<0xFF>", _tok.Pieces[258]);
        Assert.Equal(" t", _tok.Pieces[259]);
        Assert.Equal(1, _tok.BosId);
        Assert.Equal(2, _tok.EosId);
        Assert.Equal(2, _tok.PadId);
    }

    [Fact]
    public void Oracle_ids_after_bos_decode_to_the_oracle_text_without_the_dummy_space()
    {
        Assert.Equal(Stories260K.GreedyText, _tok.Decode([1, .. Stories260K.GreedyIds]));
    }

    [Fact]
    public void Oracle_ids_alone_decode_as_a_continuation_keeping_the_leading_space()
    {
        Assert.Equal(" " + Stories260K.GreedyText, _tok.Decode(Stories260K.GreedyIds));
    }

    [Fact]
    public void Encoding_the_oracle_text_gives_exactly_the_oracle_ids()
    {
        Assert.Equal(Stories260K.GreedyIds, _tok.Encode(Stories260K.GreedyText));
        Assert.Equal([1, .. Stories260K.GreedyIds], _tok.Encode(Stories260K.GreedyText, addBos: true));
    }

    [Theory]
    [InlineData("Once upon a time, there was a little girl named Lily.")]
    [InlineData("café ☃")]
    [InlineData("Tab\tand  two spaces, digits 0123456789, emoji 🎉 and 日本語.\n\nNew paragraph!")]
    public void Encode_with_bos_then_decode_gives_back_the_text(string text)
    {
        Assert.Equal(text, _tok.Decode(_tok.Encode(text, addBos: true)));
    }

    [Fact]
    public void Characters_outside_the_vocab_fall_back_to_their_utf8_bytes_plus_three()
    {
        // '☃' is U+2603 = E2 98 83 in UTF-8 and stories260K has no piece for it; the dummy space stays alone
        // because no piece joins a space to a byte piece.
        int space = _tok.Pieces.ToList().IndexOf(" ");
        Assert.Equal([space, 0xE2 + 3, 0x98 + 3, 0x83 + 3], _tok.Encode("☃"));
    }

    [Fact]
    public void Empty_text_encodes_to_nothing_because_the_dummy_prefix_needs_text()
    {
        Assert.Empty(_tok.Encode(""));
        Assert.Equal([1], _tok.Encode("", addBos: true));
    }

    [Fact]
    public void Special_strings_in_text_are_plain_text_unless_encoded_with_special_tokens()
    {
        Assert.DoesNotContain(1, _tok.Encode("a <s> b"));
        Assert.DoesNotContain(2, _tok.Encode("a </s> b"));
        var withSpecials = _tok.EncodeWithSpecialTokens("<s>hi</s>");
        Assert.Equal(1, withSpecials[0]);
        Assert.Equal(2, withSpecials[^1]);
        Assert.Equal(_tok.Encode("hi"), withSpecials[1..^1]);
    }

    [Fact]
    public void Decode_keeps_specials_as_their_names_when_not_skipping()
    {
        Assert.Equal("<s>Lily</s>", _tok.Decode(_tok.EncodeWithSpecialTokens("<s>Lily</s>"), skipSpecial: false));
    }
}
