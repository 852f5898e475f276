namespace RlhfSharp.Labeling;

/// <summary>A committed label with what it labels, for export and the dashboard.</summary>
/// <param name="Responses">The item's responses in stored order (id, text).</param>
public sealed record StoredLabel(long Id, long ItemId, LabelTask Task, string Prompt, IReadOnlyList<CandidateResponse> Responses,
    long AnnotatorId, string Annotator, LabelSubmission Body, long CreatedMs, string IdempotencyKey)
{
    /// <summary>The response ids best first for a rank or pair label (pair: chosen, rejected); null for a tie and other tasks.</summary>
    public IReadOnlyList<long>? Order => Task switch
    {
        LabelTask.Rank => Body.Ranking,
        LabelTask.Pair when Body.Tie is true => null,
        LabelTask.Pair => [Body.Choice!.Value, .. Responses.Select(r => r.Id).Where(id => id != Body.Choice)],
        _ => null,
    };

    public string Text(long responseId) => Responses.First(r => r.Id == responseId).Text;
}
