using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
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
        // ASP.NET Core's usual logging: the console, Information for the app and Warning for the framework (the
        // appsettings.json of the templates), overridable as usual (e.g. Logging__LogLevel__Default=Debug).
        builder.Logging.ClearProviders();
        if (log is not null) builder.Logging.AddProvider(log);
        else builder.Logging.AddSimpleConsole(c => { c.SingleLine = true; c.UseUtcTimestamp = true; c.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ "; });
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
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
                // The client sees a short message; the log keeps the cause (a full disk, a locked database) for the operator.
                if (status >= 500)
                    context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger<LabelingServer>().LogError(
                        context.Features.Get<IExceptionHandlerFeature>()?.Error, "{Status} on {Method} {Path}", status, context.Request.Method, context.Request.Path);
                string message = status == 413 ? "the request body is too large" : status < 500 ? "bad request" : "internal error";
                await LabelingEndpoints.Error(status, message).ExecuteAsync(context);
            },
        });
        new LabelingEndpoints(store).Map(app);
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger<LabelingServer>();
        try { await app.StartAsync(); }
        catch (Exception e) { logger.LogError(e, "could not start on {Urls}", options.Urls); await app.DisposeAsync(); throw; }
        logger.LogInformation("started: database {Database}, listening on {Urls}", Path.GetFullPath(store.Path), string.Join(", ", app.Urls));
        app.Lifetime.ApplicationStopping.Register(() => logger.LogInformation("stopping: finishing requests in flight"));
        app.Lifetime.ApplicationStopped.Register(() => logger.LogInformation("stopped: database {Database} closed", Path.GetFullPath(store.Path)));
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
