using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Algorithms;

/// <summary>
/// Reads fixtures/losses/losses.json (schema in fixtures/README.md): nested lists become tensors of the dtype a test asks
/// for, and numbers are compared with the README's tolerance <c>|a − b| ≤ tol·max(1, |b|)</c>.
/// </summary>
internal static class LossFixtures
{
    public const double DoubleTolerance = 1e-10;
    public const double FloatTolerance = 1e-5;

    static readonly Lazy<JsonDocument> Document = new(() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "losses", "losses.json"))));

    public static IEnumerable<string> CaseNames
        => Document.Value.RootElement.GetProperty("cases").EnumerateArray().Select(c => c.GetProperty("name").GetString()!);

    public static LossCase Case(string name)
        => new(Document.Value.RootElement.GetProperty("cases").EnumerateArray().Single(c => c.GetProperty("name").GetString() == name));

    /// <summary>Flattens a JSON number or (nested) list into row-major values and its shape.</summary>
    public static (double[] Data, long[] Shape) Flatten(JsonElement element)
    {
        var data = new List<double>();
        var shape = new List<long>();
        void Walk(JsonElement e, int depth)
        {
            if (e.ValueKind == JsonValueKind.Number) { data.Add(e.GetDouble()); return; }
            int n = e.GetArrayLength();
            if (shape.Count == depth) shape.Add(n);
            else Assert.Equal(shape[depth], n); // ragged lists are a fixture bug
            foreach (var child in e.EnumerateArray()) Walk(child, depth + 1);
        }
        Walk(element, 0);
        return (data.ToArray(), shape.ToArray());
    }

    public static void AssertClose(Tensor actual, JsonElement expected, double tolerance, string what = "")
    {
        var (want, shape) = Flatten(expected);
        Assert.True(actual.shape.SequenceEqual(shape), $"{what}: shape [{string.Join(",", actual.shape)}] != [{string.Join(",", shape)}]");
        double[] got = actual.detach().to_type(ScalarType.Float64).cpu().contiguous().data<double>().ToArray();
        AssertClose(got, want, tolerance, what);
    }

    public static void AssertClose(Tensor actual, double[] expected, double tolerance, string what = "")
        => AssertClose(actual.detach().to_type(ScalarType.Float64).cpu().contiguous().data<double>().ToArray(), expected, tolerance, what);

    public static void AssertClose(double[] actual, double[] expected, double tolerance, string what = "")
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double err = Math.Abs(actual[i] - expected[i]);
            Assert.True(err <= tolerance * Math.Max(1.0, Math.Abs(expected[i])),
                $"{what}[{i}]: got {actual[i]:R}, expected {expected[i]:R} (|diff| = {err:E3})");
        }
    }

    public static void AssertClose(Tensor actual, double expected, double tolerance, string what = "")
        => AssertClose(actual, new[] { expected }, tolerance, what);
}

internal sealed class LossCase(JsonElement root)
{
    public string Name => root.GetProperty("name").GetString()!;

    public Tensor Input(string name, ScalarType dtype = ScalarType.Float64)
    {
        var (data, shape) = LossFixtures.Flatten(root.GetProperty("inputs").GetProperty(name));
        return torch.tensor(data, shape, ScalarType.Float64).to_type(dtype);
    }

    public JsonElement Expected(string name) => root.GetProperty("expected").GetProperty(name);

    public double Param(string name) => root.GetProperty("params").GetProperty(name).GetDouble();

    /// <summary>The tolerance for a computation in <paramref name="dtype"/> (fixtures/README.md, "Recommended tolerances").</summary>
    public static double Tolerance(ScalarType dtype) => dtype == ScalarType.Float64 ? LossFixtures.DoubleTolerance : LossFixtures.FloatTolerance;
}
