using System.Text;
using RlhfSharp.Tokenization;

namespace RlhfSharp.Tests.Tokenization;

/// <summary>
/// <see cref="ITokenizer.TokenBytes"/>, which the server reports as OpenAI's logprobs <c>bytes</c>: the tokens' bytes
/// concatenate to the text's UTF-8 even where a character is split over several tokens.
/// </summary>
public class TokenBytesTests(Gpt2TokenizerJson gpt2) : IClassFixture<Gpt2TokenizerJson>
{
    const string Text = "Lily saw emoji 🎉🐶, café and 日本語 ☃.";

    static void AssertBytesRebuildText(ITokenizer tokenizer, string expected)
    {
        var ids = tokenizer.Encode(Text);
        Assert.Equal(Encoding.UTF8.GetBytes(expected), ids.SelectMany(tokenizer.TokenBytes).ToArray());
        // At least one token is part of a character: its decoded text alone cannot give its bytes.
        Assert.Contains(ids, id => !tokenizer.TokenBytes(id).SequenceEqual(Encoding.UTF8.GetBytes(tokenizer.Decode([id]))));
    }

    [Fact]
    public void Gpt2_byte_level_token_bytes_rebuild_the_text() => AssertBytesRebuildText(HfTokenizer.Load(gpt2.Gpt2Dir), Text);

    [Fact]
    public void Llama2c_byte_fallback_token_bytes_rebuild_the_text_with_the_dummy_space() =>
        AssertBytesRebuildText(Stories260K.Tokenizer(), " " + Text);

    [Fact]
    public void Llama_style_tokenizer_json_token_bytes_rebuild_the_text_with_the_dummy_space()
    {
        using var dir = new TempDir();
        Stories260K.Tokenizer().SaveHuggingFace(dir.Path, modelMaxLength: 512);
        AssertBytesRebuildText(HfTokenizer.Load(dir.Path), " " + Text);
    }
}
