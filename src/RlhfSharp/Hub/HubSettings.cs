namespace RlhfSharp.Hub;

/// <summary>
/// Where the Hugging Face Hub is and how to reach it, from the environment variables <c>huggingface_hub</c> reads
/// (its <c>constants.py</c>): <c>HF_ENDPOINT</c>, <c>HF_HOME</c>, <c>HF_HUB_CACHE</c>, <c>HF_TOKEN</c>,
/// <c>HF_HUB_OFFLINE</c>, <c>HF_HUB_DOWNLOAD_TIMEOUT</c>, <c>HF_HUB_ETAG_TIMEOUT</c>.
/// </summary>
/// <param name="Endpoint">The Hub's base URL (huggingface_hub: <c>HF_ENDPOINT</c>, default https://huggingface.co).</param>
/// <param name="CacheDir">The hub cache: <c>HF_HUB_CACHE</c>, else the legacy <c>HUGGINGFACE_HUB_CACHE</c>, else <c>$HF_HOME/hub</c>.</param>
/// <param name="Token">Sent as <c>Authorization: Bearer</c>: <c>HF_TOKEN</c>, else the file <c>HF_TOKEN_PATH</c> or <c>$HF_HOME/token</c> that <c>hf auth login</c> writes.</param>
/// <param name="Offline"><c>HF_HUB_OFFLINE</c> set to 1/ON/YES/TRUE: the network is never used.</param>
public sealed record HubSettings(string Endpoint, string CacheDir, string? Token, bool Offline)
{
    /// <summary>Seconds to wait for a response's headers (huggingface_hub: <c>HF_HUB_ETAG_TIMEOUT</c> for metadata, <c>HF_HUB_DOWNLOAD_TIMEOUT</c> for data; both default 10).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Attempts after the first on a dropped connection, a timeout, 429 or 5xx (huggingface_hub's <c>http_backoff</c>: max_retries=5).</summary>
    public int MaxRetries { get; init; } = 5;

    /// <summary>First wait between retries, doubled each time up to <see cref="MaxRetryDelay"/> (huggingface_hub: base_wait_time=1 s, max_wait_time=8 s).</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between retries.</summary>
    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(8);

    /// <summary>The settings the environment gives, read at each call so a changed variable takes effect.</summary>
    public static HubSettings FromEnvironment() => FromVariables(Environment.GetEnvironmentVariable);

    /// <summary>The settings given variables looked up by <paramref name="variable"/> (the environment, or a test's table).</summary>
    public static HubSettings FromVariables(Func<string, string?> variable)
    {
        string? Env(string name) => variable(name) is { Length: > 0 } v ? v : null;
        string home = Env("HF_HOME") ?? Path.Combine(
            Env("XDG_CACHE_HOME") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "huggingface");
        home = ExpandHome(home);
        string cache = ExpandHome(Env("HF_HUB_CACHE") ?? Env("HUGGINGFACE_HUB_CACHE") ?? Path.Combine(home, "hub"));
        string? token = Env("HF_TOKEN") ?? Env("HUGGING_FACE_HUB_TOKEN");
        if (token is null)
        {
            string file = ExpandHome(Env("HF_TOKEN_PATH") ?? Path.Combine(home, "token"));
            if (File.Exists(file)) token = File.ReadAllText(file).Trim() is { Length: > 0 } t ? t : null;
        }
        var settings = new HubSettings((Env("HF_ENDPOINT") ?? "https://huggingface.co").TrimEnd('/'), cache, token, IsTrue(Env("HF_HUB_OFFLINE")));
        if (double.TryParse(Env("HF_HUB_DOWNLOAD_TIMEOUT") ?? Env("HF_HUB_ETAG_TIMEOUT"), System.Globalization.CultureInfo.InvariantCulture, out double seconds) && seconds > 0)
            settings = settings with { Timeout = TimeSpan.FromSeconds(seconds) };
        return settings;
    }

    // huggingface_hub constants._is_true: "1", "ON", "YES", "TRUE", any case.
    static bool IsTrue(string? value) => value is not null && new[] { "1", "ON", "YES", "TRUE" }.Contains(value.Trim().ToUpperInvariant());

    static string ExpandHome(string path) =>
        path == "~" || path.StartsWith("~/") ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), path.Length > 2 ? path[2..] : "") : path;
}
