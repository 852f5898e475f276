using System.Text.Json.Nodes;
using RlhfSharp.Tokenization;

namespace RlhfSharp.Tests.Tokenization;

/// <summary>
/// Added tokens in text, on the real GPT-2 and Pythia files: the cases tokenizers.js does not cover (single_word,
/// split_special_tokens, message contents). Expected ids are those of the real vocabulary's own entries, reasoned from
/// HF tokenizers' added_vocabulary.rs rules (single_word: no \w character on either side).
/// </summary>
public sealed class AddedTokenMatchingTests : IDisposable
{
    private readonly RealTokenizerFiles _files = new();
    public void Dispose() => _files.Dispose();

    [Fact]
    public void Gpt2_endoftext_in_text_is_one_id_with_special_tokens_and_plain_text_without()
    {
        var tokenizer = HfTokenizer.Load(_files.Folder("gpt2"));
        Assert.Equal([50256], tokenizer.EncodeWithSpecialTokens("<|endoftext|>"));
        Assert.Equal(7, tokenizer.Encode("<|endoftext|>").Length); // split_special_tokens=True: "<", "|", "end", ...
    }

    [Fact]
    public void Pythia_whitespace_added_tokens_are_found_even_when_specials_stay_plain_text()
    {
        var tokenizer = HfTokenizer.Load(_files.Folder("pythia"));
        // Pythia's non-special added token 50254 is 24 spaces; HF matches non-special tokens whatever split_special_tokens says.
        Assert.Equal(50254, tokenizer.AddedTokens[new string(' ', 24)]);
        Assert.Equal(tokenizer.EncodeWithSpecialTokens(new string(' ', 24) + "x"), tokenizer.Encode(new string(' ', 24) + "x"));
        Assert.Equal(50254, tokenizer.Encode(new string(' ', 24) + "x")[0]);
    }

    [Fact]
    public void A_single_word_token_is_not_matched_inside_a_word()
    {
        var patch = JsonNode.Parse("""{"extra_added_tokens":[{"id":50257,"content":"cat","single_word":true,"lstrip":false,"rstrip":false,"normalized":false,"special":false}]}""")!.AsObject();
        var tokenizer = HfTokenizer.Load(_files.Folder("gpt2", patch));
        var plain = HfTokenizer.Load(_files.Folder("gpt2"));
        Assert.Equal(plain.Encode("concatenate"), tokenizer.Encode("concatenate"));
        Assert.Equal(plain.Encode("cats"), tokenizer.Encode("cats"));
        var ids = tokenizer.Encode("a cat.");
        Assert.Contains(50257, ids);
        Assert.Equal([.. plain.Encode("a "), 50257, .. plain.Encode(".")], ids);
    }

    [Fact]
    public void Specials_inside_message_contents_stay_plain_text()
    {
        var tokenizer = HfTokenizer.Load(_files.Folder("gpt2"));
        const string text = "A<|endoftext|>B<|endoftext|>";
        var ids = tokenizer.EncodeWithSpecialTokens(text, plainSpans: [(0, 15)]);
        Assert.Equal(50256, ids[^1]);
        Assert.Single(ids, 50256);
    }
}
