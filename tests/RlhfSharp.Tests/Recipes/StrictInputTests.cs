using System.Text;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Pipeline;
using RlhfSharp.Recipes;
using RlhfSharp.Tokenization;

namespace RlhfSharp.Tests.Recipes;

/// <summary>
/// Issue #16 §2 and §4 in process: duplicate keys and lone surrogates (<see cref="StrictJson"/>) in recipes and data,
/// null sections, a BOM, the pipeline's range checks, token ids that are not ids, an --out that is a file.
/// </summary>
public sealed class StrictInputTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-strict-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    string WriteFile(string name, string text, bool bom = false)
    {
        string path = Path.Combine(tmp, name);
        File.WriteAllText(path, text, new UTF8Encoding(bom));
        return path;
    }

    [Theory]
    [InlineData("""{"a": 1, "a": 2}""", "a", "duplicate key 'a'")]
    [InlineData("""{"sft": {"optimizer": {"learning_rate": 1, "beta2": 0.9, "learning_rate": 2}}}""", "sft.optimizer.learning_rate", "duplicate key")]
    [InlineData("""{"messages": [{"role": "user"}, {"role": "a", "role": "b"}]}""", "messages[1].role", "duplicate key")]
    [InlineData("""{"prompt": "x\ud800"}""", "prompt", "surrogate")]
    [InlineData("""{"m": [["ok", "\udc00"]]}""", "m[0][1]", "surrogate")]
    [InlineData("""{"x\ud800": 1}""", "(root)", "surrogate")]
    public void Strict_json_names_the_path_of_a_duplicate_key_or_a_lone_surrogate(string json, string path, string reason)
    {
        var defect = StrictJson.FindDefect(json);
        Assert.NotNull(defect);
        Assert.Equal(path, defect.Path);
        Assert.Contains(reason, defect.Message);
    }

    [Theory]
    [InlineData("""{"a": 1, "b": {"a": 2}, "c": [{"a": 3}, {"a": 4}]}""")]
    [InlineData("""{"emoji": "\ud83d\ude00", "text": "é"}""")]
    [InlineData("""[1, "two", null, true]""")]
    public void Strict_json_accepts_what_is_well_formed(string json) => Assert.Null(StrictJson.FindDefect(json));

    [Fact]
    public void A_recipe_with_a_byte_order_mark_is_read_as_without()
    {
        string text = """{"name": "bom", "ppo": {"steps": 7}}""";
        var plain = Recipe.Load<PipelineConfig>(WriteFile("plain.json", text));
        var bom = Recipe.Load<PipelineConfig>(WriteFile("bom.json", text, bom: true));
        Assert.Equal(0xEF, File.ReadAllBytes(Path.Combine(tmp, "bom.json"))[0]);
        Assert.Equal(Recipe.Serialize(plain), Recipe.Serialize(bom));
        Assert.Equal(7, bom.Ppo.Steps);
    }

    [Theory]
    [InlineData("""{"ppo": {"steps": 7, "steps": 9}}""", "duplicate key 'ppo.steps'")]
    [InlineData("""{"ppo": null}""", "ppo must not be null")]
    [InlineData("""{"ppo": {"actor_optimizer": null}}""", "ppo.actor_optimizer must not be null")]
    [InlineData("""{"name": null}""", "name must not be null")]
    [InlineData("""{"name": "x\udfff"}""", "'name' holds a lone UTF-16 surrogate")]
    public void Recipe_defects_are_refused_with_the_key(string text, string message)
    {
        string path = WriteFile("bad.json", text);
        var e = Assert.Throws<RlhfException>(() => Recipe.Load<PipelineConfig>(path));
        Assert.Contains(message, e.Message);
        Assert.StartsWith(path, e.Message);
    }

    [Fact]
    public void A_null_section_set_on_the_command_line_is_refused_with_its_key()
    {
        var e = Assert.Throws<RlhfException>(() => Recipe.Load<PipelineConfig>(null, ["eval=null"]));
        Assert.Contains("eval must not be null", e.Message);
    }

    [Theory]
    [InlineData("prompts.eval=0")]
    [InlineData("prompts.train=-5")]
    [InlineData("feedback.k=1")]
    [InlineData("feedback.max_new_tokens=0")]
    [InlineData("feedback.ranking_prompts=0")]
    [InlineData("feedback.target_agreement=0.5")]
    [InlineData("eval.best_of_n=0")]
    [InlineData("eval.max_new_tokens=0")]
    [InlineData("ppo.ema_beta=2")]
    [InlineData("ppo.kl_target=-1")]
    [InlineData("ppo.kl_target=0")]
    public void Pipeline_values_out_of_range_are_refused_with_their_key(string set)
    {
        var e = Assert.Throws<RlhfException>(() => Recipe.Load<PipelineConfig>(null, [set]));
        Assert.Contains(set.Split('=')[0] + " must be", e.Message);
    }

    [Fact]
    public void Pipeline_values_at_the_edge_of_their_range_are_accepted()
    {
        var c = Recipe.Load<PipelineConfig>(null, ["prompts.eval=2", "feedback.k=2", "eval.best_of_n=1", "ppo.ema_beta=0.992", "ppo.kl_target=6", "eval.shown_samples=0"]);
        Assert.Equal(0.992, c.Ppo.EmaBeta);
        Assert.Equal(6, c.Ppo.KlTarget);
    }

    [Theory]
    [InlineData("""{"prompt": "a", "completion": "b", "prompt": "c"}""", "duplicate key 'prompt'")]
    [InlineData("""{"prompt": "a\ud800", "completion": "b"}""", "'prompt' holds a lone UTF-16 surrogate")]
    public void Data_records_with_duplicate_keys_or_lone_surrogates_are_an_error_naming_file_and_line(string line, string message)
    {
        string path = WriteFile("demos.jsonl", """{"prompt": "ok", "completion": "fine"}""" + "\n" + line + "\n");
        var e = Assert.Throws<RlhfException>(() => DatasetLoader.LoadDemonstrations(path));
        Assert.Contains("demos.jsonl:2", e.Message);
        Assert.Contains(message, e.Message);
        // With --skip-invalid the record is counted and skipped like any other bad one.
        Assert.Equal(1, DatasetLoader.LoadDemonstrations(path, skipInvalid: true).Skipped);
    }

    [Theory]
    [InlineData("\"seven\"", "model.vocab[\"b\"]")]
    [InlineData("-3", "model.vocab[\"b\"]")]
    [InlineData("1.5", "model.vocab[\"b\"]")]
    public void A_tokenizer_json_id_that_is_not_a_token_id_is_an_error_naming_the_key(string id, string key)
    {
        string dir = Path.Combine(tmp, "tok");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"),
            $$"""{"model": {"type": "BPE", "vocab": {"a": 0, "b": {{id}}, "ab": 2}, "merges": ["a b"]}, "pre_tokenizer": {"type": "ByteLevel"}, "added_tokens": []}""");
        var e = Assert.Throws<RlhfException>(() => HfTokenizer.Load(dir));
        Assert.Contains("tokenizer.json", e.Message);
        Assert.Contains(key, e.Message);
    }

    [Fact]
    public void An_added_token_with_a_string_id_is_an_error_naming_it()
    {
        string dir = Path.Combine(tmp, "tok2");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"),
            """{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}, "added_tokens": [{"id": "2", "content": "<s>"}]}""");
        var e = Assert.Throws<RlhfException>(() => HfTokenizer.Load(dir));
        Assert.Contains("added_tokens[0].id", e.Message);
    }

    [Fact]
    public void An_out_folder_that_is_a_file_is_named_as_one()
    {
        string file = WriteFile("a-file", "mine");
        foreach (var dir in new[] { file, Path.Combine(file, "run", "sft") })
        {
            var e = Assert.Throws<RlhfException>(() => Durable.CheckWritable(dir));
            Assert.Contains($"{file} is a file", e.Message);
        }
        Assert.Equal("mine", File.ReadAllText(file));
    }
}
