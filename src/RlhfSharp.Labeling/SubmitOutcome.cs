namespace RlhfSharp.Labeling;

/// <summary>What became of a submitted label.</summary>
public enum SubmitStatus
{
    /// <summary>Committed now.</summary>
    Stored,
    /// <summary>The same idempotency key was committed before: nothing new was stored (a retry).</summary>
    Duplicate,
    /// <summary>No such assignment for this annotator.</summary>
    NotFound,
    /// <summary>The assignment already has a label, or the key was used for another assignment.</summary>
    Conflict,
    /// <summary>The label does not fit the item's task.</summary>
    Invalid,
}

/// <summary>The result of <see cref="LabelStore.Submit"/>: the label's id once stored, else why not.</summary>
public sealed record SubmitOutcome(SubmitStatus Status, long LabelId = 0, long AnnotatorLabels = 0, string? Problem = null);
