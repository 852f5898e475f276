using System.Text.Json.Nodes;
using RlhfSharp.Models;

namespace RlhfSharp.Tests.Models;

/// <summary>
/// rope_scaling as real checkpoints use it. "linear" (position interpolation, Chen et al. 2023) divides every
/// frequency by the factor; "llama3" (Meta Llama 3.1; HF <c>_compute_llama3_parameters</c>) keeps wavelengths shorter
/// than original/high_freq_factor, divides those longer than original/low_freq_factor by the factor, and blends between.
/// </summary>
public class RopeScalingTests
{
    const int HeadDim = 128;
    const double Theta = 500000;

    [Fact]
    public void Linear_scaling_divides_every_frequency_by_the_factor()
    {
        var plain = RopeScaling.InverseFrequencies(HeadDim, Theta, null);
        var linear = RopeScaling.InverseFrequencies(HeadDim, Theta, new RopeScaling("linear", 4.0));
        for (int i = 0; i < plain.Length; i++) Assert.Equal(plain[i] / 4.0, linear[i], 15);
        Assert.Equal(1.0, plain[0]);
        Assert.Equal(Math.Pow(Theta, -2.0 * 63 / HeadDim), plain[63], 15);
    }

    [Fact]
    public void Llama3_scaling_keeps_high_frequencies_divides_low_ones_and_blends_between()
    {
        var scaling = new RopeScaling("llama3", 8.0, LowFreqFactor: 1.0, HighFreqFactor: 4.0, OriginalMaxPositionEmbeddings: 8192);
        var plain = RopeScaling.InverseFrequencies(HeadDim, Theta, null);
        var scaled = RopeScaling.InverseFrequencies(HeadDim, Theta, scaling);
        int kept = 0, divided = 0, blended = 0;
        for (int i = 0; i < plain.Length; i++)
        {
            double wavelength = 2 * Math.PI / plain[i];
            if (wavelength < 8192 / 4.0) { Assert.Equal(plain[i], scaled[i]); kept++; }
            else if (wavelength > 8192 / 1.0) { Assert.Equal(plain[i] / 8.0, scaled[i], 15); divided++; }
            else
            {
                // Between the two: the smooth factor s = (8192/λ − 1)/(4 − 1) mixes (1−s)·f/8 + s·f.
                double s = (8192 / wavelength - 1.0) / 3.0;
                Assert.Equal((1 - s) * plain[i] / 8.0 + s * plain[i], scaled[i], 15);
                Assert.InRange(scaled[i], plain[i] / 8.0, plain[i]);
                blended++;
            }
        }
        Assert.True(kept > 0 && divided > 0 && blended > 0, $"{kept} kept, {divided} divided, {blended} blended");
    }

    [Fact]
    public void Config_json_rope_scaling_is_read_and_unknown_kinds_are_named()
    {
        var j = (JsonObject)JsonNode.Parse("""
            {"model_type":"llama","vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2,
             "rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}}
            """)!;
        var c = TransformerConfig.FromJson(j, "config.json");
        Assert.Equal(new RopeScaling("llama3", 8.0, 1.0, 4.0, 8192), c.RopeScaling);
        Assert.Equal("llama3", TransformerConfig.FromJson((JsonObject)JsonNode.Parse(c.ToJson("LlamaForCausalLM").ToJsonString())!, "x").RopeScaling!.Type);

        j["rope_scaling"] = JsonNode.Parse("""{"type":"yarn","factor":4.0}""");
        var e = Assert.Throws<RlhfException>(() => TransformerConfig.FromJson(j, "config.json"));
        Assert.Contains("yarn", e.Message);
    }
}
