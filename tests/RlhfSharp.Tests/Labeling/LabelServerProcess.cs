using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace RlhfSharp.Tests.Labeling;

/// <summary>
/// The real <c>rlhf label serve</c> as a separate process (so a kill is a real SIGKILL), on a fixed loopback port
/// that survives restarts.
/// </summary>
public sealed class LabelServerProcess : IDisposable
{
    readonly string[] args;
    Process? process;
    readonly System.Text.StringBuilder log = new();

    public int Port { get; }
    public Uri Url => new($"http://127.0.0.1:{Port}");
    public string Log { get { lock (log) return log.ToString(); } }

    public LabelServerProcess(string db, params string[] extra)
    {
        Port = FreePort();
        args = ["label", "serve", "--db", db, "--urls", Url.ToString().TrimEnd('/'), .. extra];
    }

    static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>Starts the server and waits until it answers (401 to an anonymous request).</summary>
    public async Task StartAsync(TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "rlhf.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        process = Process.Start(psi)!;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var http = new HttpClient { BaseAddress = Url, Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(120));
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited) throw new InvalidOperationException($"rlhf label serve exited with {process.ExitCode}: {Log}");
            try
            {
                using var response = await http.GetAsync("/api/me");
                if (response.StatusCode == HttpStatusCode.Unauthorized) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(50);
        }
        throw new TimeoutException($"rlhf label serve did not answer on {Url}: {Log}");
    }

    /// <summary>SIGKILL: no shutdown code runs, in-flight requests are cut.</summary>
    public void Kill()
    {
        if (process is null) return;
        process.Kill(entireProcessTree: true);
        process.WaitForExit();
        process.Dispose();
        process = null;
    }

    public void Dispose() => Kill();
}
