namespace RlhfSharp.Server;

/// <summary>How <c>rlhf serve</c> listens and what it accepts.</summary>
public sealed record ServerOptions
{
    /// <summary>Addresses to listen on; port 0 picks a free port (tests).</summary>
    public string Urls { get; init; } = "http://127.0.0.1:8000";
    /// <summary>When set, every request needs <c>Authorization: Bearer {ApiKey}</c>.</summary>
    public string? ApiKey { get; init; }
    /// <summary>Name reported by <c>/v1/models</c> and in responses.</summary>
    public string ModelName { get; init; } = "stories260k";
    /// <summary>Largest <c>max_tokens</c> accepted (also capped by the model's positions); a request without one gets this.</summary>
    public int MaxTokensCap { get; init; } = 1024;
    /// <summary>Largest <c>n</c> accepted.</summary>
    public int MaxChoices { get; init; } = 16;
    /// <summary>Request bodies above this size are refused (413).</summary>
    public long MaxRequestBytes { get; init; } = 1 << 20;
    /// <summary>How long the batcher waits after the first waiting request so that others can join its batch.</summary>
    public TimeSpan BatchWindow { get; init; } = TimeSpan.FromMilliseconds(5);
    /// <summary>
    /// On SIGTERM or Ctrl+C, how long requests in flight may finish before their connections are closed and their
    /// generation stops (ASP.NET Core's HostOptions.ShutdownTimeout, 30 s by default; a few seconds here, so a
    /// supervisor's stop is honoured promptly, as Kubernetes' 30 s grace period before SIGKILL needs).
    /// </summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>Most rows (choices) in one generation batch.</summary>
    public int MaxBatchRows { get; init; } = 32;
}
