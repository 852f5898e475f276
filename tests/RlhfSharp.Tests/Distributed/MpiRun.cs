using System.Diagnostics;

namespace RlhfSharp.Tests.Distributed;

/// <summary>Runs the real <c>rlhf</c> program under Open MPI's <c>mpirun</c> with N ranks on this machine.</summary>
public static class MpiRun
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    /// <param name="outputDir">When set, Open MPI writes each rank's stdout and stderr under it (<c>--output-filename</c>).</param>
    public static Result Run(int ranks, string? outputDir, params string[] args)
    {
        string mpirun = Prerequisite.MpirunPath ?? throw new InvalidOperationException(
            $"mpirun is not installed: the data-parallel tests need Open MPI ({Prerequisite.InstallCommand} installs it).");
        var psi = new ProcessStartInfo(mpirun) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        // --oversubscribe: more ranks than free cores is fine for a test; --allow-run-as-root: CI runs as root.
        foreach (var a in new[] { "-np", ranks.ToString(), "--oversubscribe", "--allow-run-as-root" }) psi.ArgumentList.Add(a);
        if (outputDir is not null) { psi.ArgumentList.Add("--output-filename"); psi.ArgumentList.Add(outputDir); }
        psi.ArgumentList.Add("dotnet");
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "rlhf.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(300_000)) { p.Kill(entireProcessTree: true); throw new TimeoutException("mpirun rlhf " + string.Join(' ', args)); }
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }
}
