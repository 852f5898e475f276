namespace RlhfSharp.Labeling;

/// <summary>One candidate response as an annotator sees it.</summary>
public sealed record CandidateResponse(long Id, string Text);

/// <summary>
/// An item given to one annotator: the prompt and its candidate responses in the order this annotator sees them
/// (shuffled per annotator so position does not bias the rankings). Never contains other annotators' labels.
/// </summary>
public sealed record Assignment(long AssignmentId, string Task, string Prompt, IReadOnlyList<CandidateResponse> Responses);

/// <summary>An annotator's account as the server knows it after the token was checked.</summary>
public sealed record Annotator(long Id, string Name, bool IsAdmin);

/// <summary>How far one annotator has come: labels given and items still open to them.</summary>
public sealed record Progress(string Name, bool Admin, long Labels, long Available)
{
    /// <summary><see cref="Available"/> per task (every task named, 0 included), so a page filtered to one task can say what waits in the others.</summary>
    public IReadOnlyDictionary<string, long> AvailableByTask { get; init; } = new Dictionary<string, long>();

    /// <summary>Items this annotator could label that still lack labels, but whose places other annotators' open assignments hold now.</summary>
    public long HeldByOthers { get; init; }

    /// <summary>Items this annotator skipped.</summary>
    public long Skipped { get; init; }
}
