using RlhfSharp.Tokenization;

namespace RlhfSharp.Tests.Tokenization;

public class TokenizerLoaderTests
{
    [Fact]
    public void A_llama2c_checkpoint_finds_tok512_bin_next_to_it()
    {
        var tok = TokenizerLoader.Load(Path.Combine(Stories260K.Dir, "stories260K.bin"));
        Assert.IsType<Llama2cTokenizer>(tok);
        Assert.Equal(512, tok.VocabSize);
        Assert.Equal(Stories260K.GreedyIds, tok.Encode(Stories260K.GreedyText));
    }

    [Fact]
    public void A_folder_with_tokenizer_json_loads_as_hf()
    {
        using var dir = new TempDir();
        Stories260K.Tokenizer().SaveHuggingFace(dir.Path);
        Assert.IsType<HfTokenizer>(TokenizerLoader.Load(dir.Path));
    }

    [Fact]
    public void An_empty_folder_names_the_folder_and_the_files_looked_for()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<RlhfException>(() => TokenizerLoader.Load(dir.Path));
        Assert.Contains(dir.Path, e.Message);
        Assert.Contains("tokenizer.json", e.Message);
        Assert.Contains("tokenizer.model", e.Message);
    }

    [Fact]
    public void A_checkpoint_without_a_tokenizer_names_what_was_looked_for()
    {
        using var dir = new TempDir();
        var bin = Path.Combine(dir.Path, "model.bin");
        File.WriteAllBytes(bin, new byte[28]);
        var e = Assert.Throws<RlhfException>(() => TokenizerLoader.Load(bin));
        Assert.Contains(bin, e.Message);
        Assert.Contains("tok*.bin", e.Message);
    }

    [Fact]
    public void A_missing_path_is_named_in_the_error()
    {
        var e = Assert.Throws<RlhfException>(() => TokenizerLoader.Load("/nonexistent/model.bin"));
        Assert.Contains("/nonexistent/model.bin", e.Message);
    }
}
