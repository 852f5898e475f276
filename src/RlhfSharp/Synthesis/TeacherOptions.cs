namespace RlhfSharp.Synthesis;

/// <summary>
/// Where the teacher is and how hard to push it: any OpenAI-compatible endpoint (OpenAI, vLLM, a local
/// <c>rlhf serve</c>). The key is read from an environment variable, never from the command line, so it stays out
/// of shell history and process lists.
/// </summary>
public sealed record TeacherOptions
{
    /// <summary>Base URL up to and including <c>/v1</c>, e.g. <c>http://127.0.0.1:8000/v1</c>.</summary>
    public required Uri BaseUrl { get; init; }
    /// <summary>The <c>model</c> field of every request.</summary>
    public required string Model { get; init; }
    /// <summary>Name of the environment variable holding the API key (OPENAI_API_KEY, as the OpenAI SDKs read).</summary>
    public string ApiKeyVariable { get; init; } = "OPENAI_API_KEY";
    /// <summary>Requests in flight at once. Self-instruct's script sends one prompt per request, batched by 5 (request_batch_size).</summary>
    public int Concurrency { get; init; } = 4;
    /// <summary>Retries after a 408/429/5xx or a dropped connection, with exponential backoff that honours Retry-After (the OpenAI SDK's policy; its default is 3).</summary>
    public int MaxRetries { get; init; } = 3;
    /// <summary>Sampling temperature. Self-instruct generates instructions at 0.7 (bootstrap_instructions.py).</summary>
    public double Temperature { get; init; } = 0.7;
    /// <summary>Longest reply in tokens (self-instruct: 1024 for instruction lists).</summary>
    public int MaxTokens { get; init; } = 1024;
    /// <summary>Seconds before one request is abandoned (and retried).</summary>
    public double TimeoutSeconds { get; init; } = 120;

    public void Validate()
    {
        if (BaseUrl.Scheme is not ("http" or "https")) throw new RlhfException($"--base-url {BaseUrl}: must start with http:// or https://.");
        if (Concurrency < 1) throw new RlhfException($"--concurrency must be at least 1, got {Concurrency}.");
        if (MaxRetries < 0) throw new RlhfException($"--max-retries must be 0 or more, got {MaxRetries}.");
        if (MaxTokens < 1) throw new RlhfException($"--max-tokens must be at least 1, got {MaxTokens}.");
        if (!(Temperature >= 0 && Temperature <= 2)) throw new RlhfException($"--temperature must be between 0 and 2, got {Temperature}.");
    }
}
