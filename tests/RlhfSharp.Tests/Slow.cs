namespace RlhfSharp.Tests;

/// <summary>
/// The switch between a slow test's short version (the default, what CI runs) and its full version
/// (<c>RLHF_SLOW=1 dotnet test …</c>, what the benchmark runs). A slow test reads <see cref="Enabled"/>
/// to size itself, e.g. <c>var kills = Slow.Enabled ? 10 : 2;</c>, and carries <c>[Trait("Speed", "Slow")]</c>.
/// </summary>
public static class Slow
{
    public static bool Enabled => Environment.GetEnvironmentVariable("RLHF_SLOW") == "1";

    /// <summary>The short value in CI, the full one under RLHF_SLOW=1.</summary>
    public static int Pick(int shortValue, int fullValue) => Enabled ? fullValue : shortValue;
}
