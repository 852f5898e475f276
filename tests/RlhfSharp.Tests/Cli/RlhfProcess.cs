using System.Diagnostics;

namespace RlhfSharp.Tests.Cli;

/// <summary>Runs the real <c>rlhf</c> program (built next to the tests) as a separate process.</summary>
public static class RlhfProcess
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Result Run(params string[] args) => RunWithInput(null, args);

    /// <summary>Runs rlhf with <paramref name="input"/> typed on its standard input, then end of input.</summary>
    public static Result RunWithInput(string? input, params string[] args) => RunWithInput(input, new Dictionary<string, string>(), args);

    /// <summary>As <see cref="RunWithInput(string?, string[])"/>, with <paramref name="environment"/> set for the process.</summary>
    public static Result RunWithInput(string? input, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var (name, value) in environment) psi.Environment[name] = value;
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "rlhf.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        if (input is not null) p.StandardInput.Write(input);
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000)) { p.Kill(entireProcessTree: true); throw new TimeoutException("rlhf " + string.Join(' ', args)); }
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }
}
