using System.Text.Json.Nodes;
using RlhfSharp.Models;

namespace RlhfSharp.Tests.Checkpoints;

/// <summary>Config keys whose meaning is not implemented are refused by name, never silently ignored (issue 18).</summary>
public class VariantConfigTests
{
    static JsonObject Fixture(string name) =>
        (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(new HfFixture(name, "hf-wave3").Dir, "config.json")))!;

    [Theory]
    [InlineData("mixtral_tiny", "router_jitter_noise", "0.01")]
    [InlineData("phi3_tiny", "rope_scaling", "{\"type\": \"yarn\", \"factor\": 2.0}")]
    [InlineData("phi3_tiny", "rope_scaling", "{\"type\": \"longrope\", \"short_factor\": [1,1,1,1], \"long_factor\": [2,2,2,2], \"short_mscale\": 1.2}")]
    [InlineData("gemma_tiny", "sliding_window", "4")]
    [InlineData("mistral_sliding_tiny", "partial_rotary_factor", "0.5")]
    [InlineData("mistral_sliding_tiny", "rope_scaling", "{\"rope_type\": \"dynamic\", \"factor\": 2.0}")]
    public void An_unimplemented_setting_is_refused_naming_its_key(string name, string key, string json)
    {
        var j = Fixture(name);
        j[key] = JsonNode.Parse(json);
        var e = Assert.Throws<RlhfException>(() => TransformerConfig.FromJson(j, "config.json"));
        Assert.Contains(key == "rope_scaling" && json.Contains("short_mscale") ? "short_mscale" : key == "rope_scaling" ? (json.Contains("yarn") ? "yarn" : "dynamic") : key, e.Message);
    }

    [Fact]
    public void Qwen2_windows_only_with_use_sliding_window_and_from_max_window_layers()
    {
        var j = Fixture("qwen2moe_tiny");
        Assert.Null(TransformerConfig.FromJson(j, "c").SlidingWindow); // use_sliding_window false: HF ignores sliding_window
        j["use_sliding_window"] = true; j["sliding_window"] = 3; j["max_window_layers"] = 1;
        var c = TransformerConfig.FromJson(j, "c");
        Assert.Equal(3, c.SlidingWindow);
        Assert.False(c.WindowedLayers(0));
        Assert.True(c.WindowedLayers(1));
    }

    [Fact]
    public void Gemma2_windows_even_layers_and_qwen2_moe_dense_layers_follow_the_config()
    {
        var g = TransformerConfig.FromJson(Fixture("gemma2_tiny"), "c");
        Assert.True(g.WindowedLayers(0));
        Assert.False(g.WindowedLayers(1));
        var j = Fixture("qwen2moe_tiny");
        j["mlp_only_layers"] = new JsonArray(0);
        var q = TransformerConfig.FromJson(j, "c");
        Assert.False(q.SparseLayer(0));
        Assert.True(q.SparseLayer(1));
        j["mlp_only_layers"] = new JsonArray(); j["decoder_sparse_step"] = 2;
        q = TransformerConfig.FromJson(j, "c");
        Assert.False(q.SparseLayer(0));
        Assert.True(q.SparseLayer(1));
    }
}
