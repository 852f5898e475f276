using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace RlhfSharp.Tests.Serve;

/// <summary>
/// A real <c>rlhf serve</c> process on a free loopback port, started and waited for until <c>GET /v1/models</c> answers
/// (for tests of what only a process shows: signals, command-line options). Disposing kills it if it still runs.
/// </summary>
sealed class ServeProcess : IDisposable
{
    ServeProcess(Process process, HttpClient http, Task<string> stderr) { Process = process; Http = http; Stderr = stderr; }

    public Process Process { get; }
    /// <summary>A client whose base address is the server's <c>/v1/</c>.</summary>
    public HttpClient Http { get; }
    /// <summary>Everything the process writes to stderr, once it has exited.</summary>
    public Task<string> Stderr { get; }

    /// <param name="args">Options after <c>serve</c> (the port's <c>--urls</c> is added).</param>
    public static async Task<ServeProcess> StartAsync(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "rlhf.dll"), "serve" }.Concat(args).Concat(["--urls", $"http://127.0.0.1:{port}"]))
            psi.ArgumentList.Add(a);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) psi.Environment[key] = value;
        var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        _ = p.StandardOutput.ReadToEndAsync();
        var server = new ServeProcess(p, new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/v1/"), Timeout = TimeSpan.FromSeconds(120) }, stderr);
        try
        {
            for (var deadline = DateTime.UtcNow.AddSeconds(120); ; await Task.Delay(100))
            {
                Assert.False(p.HasExited, "rlhf serve exited at start");
                try { if ((await server.Http.GetAsync("models")).IsSuccessStatusCode) return server; } catch (HttpRequestException) { }
                Assert.True(DateTime.UtcNow < deadline, "rlhf serve did not start");
            }
        }
        catch
        {
            server.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        if (!Process.HasExited) Process.Kill(entireProcessTree: true);
        Process.WaitForExit();
        Http.Dispose();
        Process.Dispose();
    }
}
