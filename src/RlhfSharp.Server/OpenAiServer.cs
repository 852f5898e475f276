using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Tokenization;

namespace RlhfSharp.Server;

/// <summary>
/// An OpenAI-compatible HTTP server for one model (<c>rlhf serve</c>): Kestrel, the <see cref="OpenAiEndpoints"/>
/// and the <see cref="GenerationBatcher"/> they share.
/// </summary>
public sealed class OpenAiServer : IAsyncDisposable
{
    readonly WebApplication app;

    /// <summary>The shared generation loop (tests read its batch counter).</summary>
    public GenerationBatcher Batcher { get; }

    /// <summary>The addresses actually bound (port 0 resolved) once <see cref="StartAsync(RlhfSharp.Generation.ITextGenerator, ServerOptions, RlhfSharp.Tokenization.ChatTemplate?, Microsoft.Extensions.Logging.ILoggerProvider?)"/> returned.</summary>
    public IReadOnlyList<string> Urls => app.Urls.ToList();

    OpenAiServer(WebApplication app, GenerationBatcher batcher) { this.app = app; Batcher = batcher; }

    /// <summary>Builds and starts the server for an already loaded model; the caller keeps ownership of it.</summary>
    /// <param name="template">Chat template for <c>/v1/chat/completions</c>; null takes the model's own, else "plain".</param>
    public static Task<OpenAiServer> StartAsync(PretrainedModel model, ServerOptions options, ChatTemplate? template = null, ILoggerProvider? log = null) =>
        StartAsync(new CausalTextGenerator(model), options, template, log);

    /// <summary>Builds and starts the server for any <see cref="ITextGenerator"/>, e.g. a T5 (<see cref="Seq2SeqTextGenerator"/>).</summary>
    public static async Task<OpenAiServer> StartAsync(ITextGenerator model, ServerOptions options, ChatTemplate? template = null, ILoggerProvider? log = null)
    {
        var urls = options.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        // Kestrel's own answer to "127.0.0.1:8000" is a FormatException from deep inside the host (issue 15).
        foreach (var url in urls)
            if (!(url.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || url.StartsWith("https://", StringComparison.OrdinalIgnoreCase)) || url.Length <= "https://".Length)
                throw new RlhfException($"--urls: '{url}' is not an address to listen on: give it with its scheme, e.g. http://{(url.Contains("://") ? url[(url.IndexOf("://") + 3)..] : url)}");
        template ??= Directory.Exists(model.Path) ? ChatTemplate.ForModel(model.Path, null) : ChatTemplate.FromName("plain");
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (log is not null) builder.Logging.AddProvider(log);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseKestrel(k => k.Limits.MaxRequestBodySize = options.MaxRequestBytes);
        builder.WebHost.UseUrls(urls);
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = options.ShutdownTimeout);
        var app = builder.Build();
        var batcher = new GenerationBatcher(model, options);
        new OpenAiEndpoints(model, template, batcher, options).Map(app);
        try { await app.StartAsync(); }
        catch (Exception e) when (e is FormatException or UriFormatException)
        {
            batcher.Dispose(); await app.DisposeAsync();
            throw new RlhfException($"--urls: '{options.Urls}' is not a list of addresses to listen on ({e.Message}); e.g. http://127.0.0.1:8000.");
        }
        catch { batcher.Dispose(); await app.DisposeAsync(); throw; }
        var server = new OpenAiServer(app, batcher);
        if (options.ApiKey is null && server.Urls.FirstOrDefault(u => !IsLoopback(u)) is string open)
        {
            server.Warnings.Add($"listening on {open} without an API key: anyone who can reach this address can use the model; pass --api-key (or set RLHF_API_KEY), or listen on 127.0.0.1.");
            app.Logger.LogWarning("{Warning}", server.Warnings[^1]);
        }
        return server;
    }

    /// <summary>Warnings about how the server was started (printed by the CLI), e.g. an open address without an API key.</summary>
    public List<string> Warnings { get; } = [];

    /// <summary>Whether a bound address only accepts this machine's connections (127.0.0.0/8, ::1, localhost).</summary>
    static bool IsLoopback(string url)
    {
        int scheme = url.IndexOf("://", StringComparison.Ordinal);
        string hostPort = scheme >= 0 ? url[(scheme + 3)..].TrimEnd('/') : url;
        int colon = hostPort.LastIndexOf(':');
        string host = (colon > 0 && !hostPort.EndsWith(']') ? hostPort[..colon] : hostPort).Trim('[', ']');
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase)) return true;
        return System.Net.IPAddress.TryParse(host, out var ip) && System.Net.IPAddress.IsLoopback(ip); // "*", "+", 0.0.0.0 and names are not
    }

    /// <summary>Completes when the host is asked to stop (Ctrl+C in the CLI).</summary>
    public Task WaitForShutdownAsync() => app.WaitForShutdownAsync();

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        Batcher.Dispose();
        await app.DisposeAsync();
    }
}
