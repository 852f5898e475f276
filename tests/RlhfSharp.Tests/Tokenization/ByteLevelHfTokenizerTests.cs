using RlhfSharp.Tokenization;

namespace RlhfSharp.Tests.Tokenization;

/// <summary>HfTokenizer on GPT-2's byte-level BPE, checked against Microsoft.ML's tiktoken implementation of GPT-2.</summary>
public class ByteLevelHfTokenizerTests(Gpt2TokenizerJson gpt2) : IClassFixture<Gpt2TokenizerJson>
{
    public static TheoryData<string> SampleText => new()
    {
        "Hello world",
        "Once upon a time, there was a little girl named Lily.",
        "It's 5:30pm; we've got 1234567 tokens, don't we?  Double  spaces\tand tabs\n\nand newlines.\n",
        "Unicode: café naïve 日本語 Ελληνικά emoji 🎉🐶 ☃ — dashes … ellipsis",
        "   leading spaces and trailing   ",
        "def f(x):\n    return x ** 2  # code\n",
    };

    [Theory]
    [MemberData(nameof(SampleText))]
    public void Gpt2_tokenizer_json_encodes_like_tiktoken_gpt2(string text)
    {
        var hf = HfTokenizer.Load(gpt2.Gpt2Dir);
        Assert.Equal(gpt2.Tiktoken.EncodeToIds(text).ToArray(), hf.Encode(text));
    }

    [Theory]
    [MemberData(nameof(SampleText))]
    public void Split_layout_with_pair_merges_encodes_like_tiktoken_gpt2(string text)
    {
        var hf = HfTokenizer.Load(gpt2.SplitDir);
        Assert.Equal(gpt2.Tiktoken.EncodeToIds(text).ToArray(), hf.Encode(text));
    }

    [Theory]
    [MemberData(nameof(SampleText))]
    public void Byte_level_encoding_decodes_back_to_the_text(string text)
    {
        var hf = HfTokenizer.Load(gpt2.Gpt2Dir);
        Assert.Equal(text, hf.Decode(hf.Encode(text)));
        Assert.Equal(text, hf.Decode(hf.Encode(text, addBos: true)));
    }

    [Fact]
    public void Endoftext_is_bos_eos_and_pad_and_is_only_special_when_asked()
    {
        var hf = HfTokenizer.Load(gpt2.Gpt2Dir);
        Assert.Equal(50257, hf.VocabSize);
        Assert.Equal(50256, hf.BosId);
        Assert.Equal(50256, hf.EosId);
        Assert.Equal(50256, hf.PadId);
        Assert.DoesNotContain(50256, hf.Encode("a<|endoftext|>b"));
        Assert.Equal("a<|endoftext|>b", hf.Decode(hf.Encode("a<|endoftext|>b")));
        Assert.Equal(gpt2.Tiktoken.EncodeToIds("a<|endoftext|>b").ToArray(), hf.EncodeWithSpecialTokens("a<|endoftext|>b"));
        Assert.Equal("ab", hf.Decode(hf.EncodeWithSpecialTokens("a<|endoftext|>b")));
        Assert.Equal("a<|endoftext|>b", hf.Decode(hf.EncodeWithSpecialTokens("a<|endoftext|>b"), skipSpecial: false));
    }

    [Fact]
    public void A_character_split_across_tokens_decodes_whole_only_when_all_its_tokens_are_present()
    {
        var hf = HfTokenizer.Load(gpt2.Gpt2Dir);
        var ids = hf.Encode("🎉");
        Assert.True(ids.Length > 1); // the emoji's 4 bytes are not one GPT-2 token
        Assert.Equal("🎉", hf.Decode(ids));
    }
}
