using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;

namespace RlhfSharp.Tests.Checkpoints;

/// <summary>config.json values that cannot work are refused with the key named, instead of loading and giving NaN.</summary>
public sealed class ConfigValueTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-cfg-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    string WithValue(string fixture, string key, JsonNode? value)
    {
        string dir = Path.Combine(tmp, fixture + key);
        Directory.CreateDirectory(dir);
        foreach (var f in Directory.GetFiles(new HfFixture(fixture).Dir)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!.AsObject();
        config[key] = value;
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        return dir;
    }

    [Theory]
    [InlineData("llama_tiny_gqa", "rms_norm_eps", 0.0)]
    [InlineData("llama_tiny_gqa", "rms_norm_eps", -1e-6)]
    [InlineData("llama_tiny_gqa", "rope_theta", 0.0)]
    [InlineData("qwen2_tiny_tied", "rope_theta", -10000.0)]
    [InlineData("gpt2_tiny", "layer_norm_epsilon", 0.0)]
    public void Non_positive_numerics_are_refused_naming_the_key(string fixture, string key, double value)
    {
        string dir = WithValue(fixture, key, value);
        var e = Assert.Throws<RlhfException>(() => HuggingFaceCheckpoint.LoadCausalLM(dir));
        Assert.Contains("config.json", e.Message);
        Assert.Contains(key, e.Message);
    }

    [Fact]
    public void A_non_positive_head_dim_is_refused_naming_the_key()
    {
        var e = Assert.Throws<RlhfException>(() => HuggingFaceCheckpoint.LoadCausalLM(WithValue("llama_tiny_gqa", "head_dim", 0)));
        Assert.Contains("head_dim", e.Message);
    }
}
