using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace RlhfSharp.Labeling;

/// <summary>
/// The human-feedback web app (<c>rlhf label serve</c>): Kestrel serving <see cref="LabelingEndpoints"/> over one
/// <see cref="LabelStore"/>. Failures reach the client as a JSON status with a short message, never a stack trace or
/// SQL text.
/// </summary>
public sealed class LabelingServer : IAsyncDisposable
{
    readonly WebApplication app;

    /// <summary>The addresses actually bound (port 0 resolved).</summary>
    public IReadOnlyList<string> Urls => app.Urls.ToList();

    LabelingServer(WebApplication app) { this.app = app; }

    public static async Task<LabelingServer> StartAsync(LabelStore store, LabelingOptions options, ILoggerProvider? log = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (log is not null) builder.Logging.AddProvider(log);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = store.Limits.MaxRequestBytes;
            k.Limits.MaxRequestHeadersTotalSize = 16 * 1024;
            k.Limits.MaxRequestLineSize = 4 * 1024;
            k.AddServerHeader = false;
        });
        builder.WebHost.UseUrls(options.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        var app = builder.Build();
        app.UseExceptionHandler(new ExceptionHandlerOptions
        {
            StatusCodeSelector = e => e is BadHttpRequestException bad ? bad.StatusCode : 500,
            ExceptionHandler = async context =>
            {
                int status = context.Response.StatusCode;
                string message = status == 413 ? "the request body is too large" : status < 500 ? "bad request" : "internal error";
                await LabelingEndpoints.Error(status, message).ExecuteAsync(context);
            },
        });
        new LabelingEndpoints(store).Map(app);
        try { await app.StartAsync(); }
        catch { await app.DisposeAsync(); throw; }
        return new LabelingServer(app);
    }

    /// <summary>Completes when the host is asked to stop (Ctrl+C in the CLI).</summary>
    public Task WaitForShutdownAsync() => app.WaitForShutdownAsync();

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }
}
