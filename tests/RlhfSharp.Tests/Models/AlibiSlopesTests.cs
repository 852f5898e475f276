using System.Text.Json.Nodes;
using RlhfSharp.Models.Bloom;

namespace RlhfSharp.Tests.Models;

/// <summary>
/// BLOOM's ALiBi slopes for any head count against transformers v4.44's build_alibi_tensor, computed by
/// fixtures/bloom-alibi/generate.py with torch: powers of two (bloom_tiny's 4 heads), the extra heads beyond the largest
/// power of two (3, 6, 12, 24, 112), and the float32 rounding of the base from 16 heads on (BLOOM-560M has 16, 7B1 32).
/// </summary>
public class AlibiSlopesTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(6)]
    [InlineData(12)]
    [InlineData(16)]
    [InlineData(24)]
    [InlineData(32)]
    [InlineData(112)]
    public void Slopes_equal_hfs_float32_values_bit_for_bit(int heads)
    {
        var j = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "bloom-alibi", "slopes.json")))!;
        var expected = ((JsonArray)j["slopes"]![heads.ToString()]!).Select(v => (float)v!.GetValue<double>()).ToArray();
        Assert.Equal(expected, BloomModel.Slopes(heads));
    }
}
