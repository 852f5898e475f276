using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Algorithms;

/// <summary>
/// Reads fixtures/losses/losses.json and pinned.json (schema in fixtures/README.md): nested lists become tensors of the
/// dtype a test asks for, and numbers are compared with the README's tolerance <c>|a − b| ≤ tol·max(1, |b|)</c>.
/// Every case and expected value a test reads is reported to the active <see cref="FixtureReads"/>, so the coverage test
/// can prove that each one is checked by a test, not only listed.
/// </summary>
internal static class LossFixtures
{
    public const double DoubleTolerance = 1e-10;
    public const double FloatTolerance = 1e-5;

    /// <summary>The fixture files: losses.json (from ../shared/fixtures/losses) and pinned.json (generate_pinned.py).</summary>
    public static readonly string[] Files = ["losses.json", "pinned.json"];

    static readonly Lazy<JsonElement[]> Cases = new(() => Files
        .SelectMany(f => JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "losses", f)))
            .RootElement.GetProperty("cases").EnumerateArray())
        .ToArray());

    public static IEnumerable<string> CaseNames => Cases.Value.Select(c => c.GetProperty("name").GetString()!);

    /// <summary>The names of the expected values of a case.</summary>
    public static IEnumerable<string> ExpectedKeys(string name)
        => Cases.Value.Single(c => c.GetProperty("name").GetString() == name).GetProperty("expected").EnumerateObject().Select(p => p.Name);

    public static LossCase Case(string name)
    {
        FixtureReads.Record(name, null);
        return new(Cases.Value.Single(c => c.GetProperty("name").GetString() == name));
    }

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

    public JsonElement Expected(string name)
    {
        FixtureReads.Record(Name, name);
        return root.GetProperty("expected").GetProperty(name);
    }

    public double Param(string name) => root.GetProperty("params").GetProperty(name).GetDouble();

    /// <summary>A list of integers among the params (token ids).</summary>
    public int[] IntListParam(string name) => root.GetProperty("params").GetProperty(name).EnumerateArray().Select(e => e.GetInt32()).ToArray();

    /// <summary>The tolerance for a computation in <paramref name="dtype"/> (fixtures/README.md, "Recommended tolerances").</summary>
    public static double Tolerance(ScalarType dtype) => dtype == ScalarType.Float64 ? LossFixtures.DoubleTolerance : LossFixtures.FloatTolerance;
}

/// <summary>
/// Which fixture cases and expected values the code running under <see cref="Start"/> read. Flows with the logical call
/// (AsyncLocal), so tests running in parallel elsewhere do not count.
/// </summary>
internal sealed class FixtureReads : IDisposable
{
    static readonly AsyncLocal<FixtureReads?> Current = new();
    readonly FixtureReads? previous;
    public HashSet<string> CasesRead { get; } = [];
    /// <summary>"case/key" of every expected value read.</summary>
    public HashSet<string> ExpectedRead { get; } = [];

    FixtureReads() { previous = Current.Value; Current.Value = this; }

    public static FixtureReads Start() => new();

    public static void Record(string caseName, string? expectedKey)
    {
        var reads = Current.Value;
        if (reads is null) return;
        lock (reads)
        {
            reads.CasesRead.Add(caseName);
            if (expectedKey is not null) reads.ExpectedRead.Add(caseName + "/" + expectedKey);
        }
    }

    public void Dispose() => Current.Value = previous;
}
