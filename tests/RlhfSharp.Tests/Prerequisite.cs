namespace RlhfSharp.Tests;

/// <summary>
/// What a test needs from the machine beyond the .NET SDK, and the one way a test says it is missing: the test is
/// reported as skipped, with the reason and the command that installs it (<c>build/install-test-deps.sh</c>). Under
/// <c>RLHF_REQUIRE_TEST_DEPS=1</c> (set by <c>.ci/run</c>, which runs that script first) a missing prerequisite fails the
/// test instead, so CI never goes green by skipping.
/// </summary>
public static class Prerequisite
{
    public const string InstallCommand = "build/install-test-deps.sh";

    /// <summary>Open MPI's launcher, for the data-parallel tests.</summary>
    public static string? MpirunPath => Which("mpirun");

    /// <summary>Debian's chromium, which Playwright drives (it never downloads a browser of its own here).</summary>
    public const string ChromiumPath = "/usr/bin/chromium";

    public static bool IsRoot => Environment.UserName == "root";

    public static void Mpirun() => Require(MpirunPath is not null, "Open MPI's mpirun is not installed (Debian: openmpi-bin, libopenmpi-dev)", installable: true);

    public static void Chromium()
    {
        Require(File.Exists(ChromiumPath), $"{ChromiumPath} is not installed (Debian: chromium)", installable: true);
        // Playwright waits 5 s for an expectation by default; on a loaded 2-core machine a request and the page's
        // re-render can take longer (a label saved, the count still old). Waiting longer changes no assertion.
        Microsoft.Playwright.Assertions.SetDefaultExpectTimeout(30_000);
    }

    /// <summary>iproute2's <c>ip</c>, for the network-namespace test.</summary>
    public static void Ip() => Require(Which("ip") is not null, "iproute2's ip is not installed (Debian: iproute2)", installable: true);

    /// <param name="why">What needs root, e.g. "mounting a tmpfs needs root (CAP_SYS_ADMIN)".</param>
    public static void Root(string why) => Require(IsRoot, why, installable: false);

    static void Require(bool met, string reason, bool installable)
    {
        if (!met && installable && Environment.GetEnvironmentVariable("RLHF_REQUIRE_TEST_DEPS") == "1")
            throw new InvalidOperationException($"{reason}; RLHF_REQUIRE_TEST_DEPS=1 makes this a failure, not a skip.");
        Skip.IfNot(met, installable ? $"{reason}: run {InstallCommand} to install it." : reason + ".");
    }

    static string? Which(string name) => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
        .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);
}
