namespace RlhfSharp.Labeling;

/// <summary>How <c>rlhf label serve</c> listens.</summary>
public sealed record LabelingOptions
{
    /// <summary>Addresses to listen on, ';'-separated; loopback unless the user says otherwise. Port 0 picks a free port.</summary>
    public string Urls { get; init; } = "http://127.0.0.1:8100";
}
