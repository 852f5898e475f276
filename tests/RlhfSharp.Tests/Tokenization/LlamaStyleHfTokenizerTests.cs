using System.Text.Json.Nodes;
using RlhfSharp.Tokenization;

namespace RlhfSharp.Tests.Tokenization;

/// <summary>
/// The stories260K tokenizer written as a LLaMA-style tokenizer.json and read back by <see cref="HfTokenizer"/>:
/// two independent encoders (run.c's score loop and HF's merge-rank BPE) must agree id for id.
/// </summary>
public class LlamaStyleHfTokenizerTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly Llama2cTokenizer _llama2c = Stories260K.Tokenizer();
    private readonly HfTokenizer _hf;

    public LlamaStyleHfTokenizerTests()
    {
        _llama2c.SaveHuggingFace(_dir.Path, modelMaxLength: 512);
        _hf = HfTokenizer.Load(_dir.Path);
    }

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string> VariedText => new()
    {
        Stories260K.GreedyText,
        "Once upon a time, there was a little girl named Lily.",
        "\"Wow!\" said Tom. \"Can I have 3 apples, 12 pears and 1000 grapes?\" Mom said: no; maybe (later)...",
        "Line one.\nLine two\n\n\tIndented line with  double  spaces and trailing space ",
        "Non-ASCII: café, naïve, Ελληνικά, 日本語, emoji 🎉🐶, snowman ☃, and a ™ sign.",
        "She said, 'It's 5:30pm - time to go home!' #happy @park [ok] {yes} <no> 50% $3 & more ~ | end.",
        "aaaaaaaaaaaa bbbbbbbb the the the thethethe   Lily Lily's ball-ball",
    };

    /// <summary>
    /// transformers' <c>all_special_ids</c> (SpecialTokensMixin: the ids of the map's bos, eos, unk, sep, pad, cls, mask and
    /// additional special tokens) for the tokenizer_config written here — bos &lt;s&gt;, eos &lt;/s&gt;, unk &lt;unk&gt;, no
    /// pad — are 1, 2, 0. RL4LMs' NLPO never masks them; the NLPO stage left &lt;unk&gt; out before.
    /// </summary>
    [Fact]
    public void Special_ids_are_transformers_all_special_ids_of_the_saved_config()
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(_dir.Path, "tokenizer_config.json")))!;
        Assert.Equal(new string?[] { "<s>", "</s>", "<unk>" }, new[] { "bos_token", "eos_token", "unk_token" }.Select(k => (string?)config[k]).ToArray());
        Assert.Null(config["pad_token"]);
        Assert.Equal([0, 1, 2], _llama2c.SpecialIds.Order());
        Assert.Equal([0, 1, 2], _hf.SpecialIds.Order());
    }

    [Theory]
    [MemberData(nameof(VariedText))]
    public void Saved_tokenizer_json_encodes_exactly_like_llama2c(string text)
    {
        Assert.Equal(_llama2c.Encode(text), _hf.Encode(text));
        Assert.Equal(_llama2c.Encode(text, addBos: true), _hf.Encode(text, addBos: true));
    }

    [Theory]
    [MemberData(nameof(VariedText))]
    public void Saved_tokenizer_json_decodes_its_own_encoding_back_to_the_text(string text)
    {
        Assert.Equal(text, _hf.Decode(_hf.Encode(text, addBos: true)));
        Assert.Equal(" " + text, _hf.Decode(_hf.Encode(text)));
    }

    [Fact]
    public void Saved_tokenizer_encodes_the_oracle_text_to_the_oracle_ids()
    {
        Assert.Equal(Stories260K.GreedyIds, _hf.Encode(Stories260K.GreedyText));
        Assert.Equal(Stories260K.GreedyText, _hf.Decode([1, .. Stories260K.GreedyIds]));
    }

    [Fact]
    public void Special_ids_come_from_the_written_tokenizer_config()
    {
        Assert.Equal(512, _hf.VocabSize);
        Assert.Equal(1, _hf.BosId);
        Assert.Equal(2, _hf.EosId);
        Assert.Equal(2, _hf.PadId); // no pad_token: falls back to EOS
        Assert.True(_hf.AddBosToken);
    }

    [Fact]
    public void Written_files_have_the_fields_transformers_reads()
    {
        var tokenizer = JsonNode.Parse(File.ReadAllText(Path.Combine(_dir.Path, "tokenizer.json")))!;
        Assert.True((bool)tokenizer["model"]!["byte_fallback"]!);
        Assert.Equal("▁t", (string)tokenizer["model"]!["vocab"]!.AsObject().First(kv => (int)kv.Value! == 259).Key);
        // The best-scoring piece " t" (score 0) must be the first merge, built from "▁" and "t".
        Assert.Equal("▁ t", (string)tokenizer["model"]!["merges"]![0]!);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(_dir.Path, "tokenizer_config.json")))!;
        Assert.Equal("LlamaTokenizerFast", (string)config["tokenizer_class"]!);
        Assert.Equal(512, (int)config["model_max_length"]!);
        Assert.True(File.Exists(Path.Combine(_dir.Path, "special_tokens_map.json")));
    }

    [Fact]
    public void Special_strings_typed_in_text_stay_plain_text()
    {
        var ids = _hf.Encode("hello <s> world </s> <unk>");
        Assert.DoesNotContain(0, ids);
        Assert.DoesNotContain(1, ids);
        Assert.DoesNotContain(2, ids);
        Assert.Equal(_llama2c.Encode("hello <s> world </s> <unk>"), ids);
    }

    [Fact]
    public void Encode_with_special_tokens_agrees_with_llama2c()
    {
        const string text = "<s>[INST] Hi there [/INST] Hello!</s>";
        Assert.Equal(_llama2c.EncodeWithSpecialTokens(text), _hf.EncodeWithSpecialTokens(text));
        Assert.Equal(1, _hf.EncodeWithSpecialTokens(text)[0]);
    }

    [Fact]
    public void Token_objects_in_tokenizer_config_and_an_eos_list_in_generation_config_are_read()
    {
        File.WriteAllText(Path.Combine(_dir.Path, "tokenizer_config.json"),
            """{"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": {"content": "</s>"}, "pad_token": "<unk>"}""");
        File.WriteAllText(Path.Combine(_dir.Path, "generation_config.json"), """{"eos_token_id": [2, 13]}""");
        var hf = HfTokenizer.Load(_dir.Path);
        Assert.Equal(1, hf.BosId);
        Assert.Equal(2, hf.EosId);
        Assert.Equal([2, 13], hf.EosIds);
        Assert.Equal(0, hf.PadId);
    }
}
