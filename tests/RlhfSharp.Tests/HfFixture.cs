using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace RlhfSharp.Tests;

/// <summary>Reads the golden outputs of HF transformers v4.44 in fixtures/hf/&lt;case&gt;/expected.json.</summary>
public sealed class HfFixture
{
    public string Dir { get; }
    public JsonObject Expected { get; }

    /// <param name="name">The case folder.</param>
    /// <param name="set">The fixture set under fixtures/: hf (GPT-2, LLaMA, Qwen2), hf-wave2 (OPT, GPT-NeoX, GPT-J, BLOOM) or hf-wave3 (Gemma, Gemma 2, Phi-3, Mistral's window, MoE).</param>
    public HfFixture(string name, string set = "hf")
    {
        Dir = Path.Combine(AppContext.BaseDirectory, "fixtures", set, name);
        Expected = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Dir, "expected.json")))!;
    }

    public static string BuiltInModel => Path.Combine(AppContext.BaseDirectory, "models", "stories260K", "stories260K.bin");

    public IEnumerable<JsonObject> Cases(string kind) => ((JsonArray)Expected[kind]!).Select(c => (JsonObject)c!);

    public static Tensor? Ints(JsonNode? node)
    {
        if (node is null) return null;
        var rows = ((JsonArray)node).Select(r => ((JsonArray)r!).Select(v => v!.GetValue<long>()).ToArray()).ToArray();
        return tensor(rows.SelectMany(r => r).ToArray(), [rows.Length, rows[0].Length]);
    }

    public static long[][] IntRows(JsonNode node) => ((JsonArray)node).Select(r => ((JsonArray)r!).Select(v => v!.GetValue<long>()).ToArray()).ToArray();

    public static Tensor Floats(JsonNode node)
    {
        var shape = ((JsonArray)node["shape"]!).Select(s => s!.GetValue<long>()).ToArray();
        var data = ((JsonArray)node["data"]!).Select(v => float.Parse(v!.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        return tensor(data, shape);
    }

    /// <summary>
    /// The README's tolerance, |a − b| ≤ atol + rtol·|b|, at positions where <paramref name="mask"/> (leading dims) is 1.
    /// Returns the worst violation ratio so failures say by how much.
    /// </summary>
    public static void AssertClose(Tensor expected, Tensor actual, Tensor? mask, string what, double atol = 1e-5, double rtol = 1e-5)
    {
        Assert.Equal(expected.shape, actual.shape);
        var diff = (actual.to(float64) - expected.to(float64)).abs();
        var allowed = expected.to(float64).abs() * rtol + atol;
        var bad = diff.gt(allowed);
        if (mask is not null)
        {
            var m = mask.to(@bool);
            while (m.dim() < bad.dim()) m = m.unsqueeze(-1);
            bad = bad.logical_and(m);
            diff = diff * m.to(float64);
        }
        long count = bad.sum().item<long>();
        Assert.True(count == 0, $"{what}: {count} values outside tolerance; max |diff| = {diff.max().item<double>():E3}");
    }
}
