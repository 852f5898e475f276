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
    /// <summary>The assignment already has a label (under another key).</summary>
    Conflict,
    /// <summary>The label does not fit the item's task.</summary>
    Invalid,
    /// <summary>
    /// The idempotency key was committed before with a different body (another assignment or other content): the
    /// IETF idempotency-key draft (§2.7) and Stripe answer 422, so a client that reuses keys finds out instead of losing labels.
    /// </summary>
    KeyReused,
}

/// <summary>The result of <see cref="LabelStore.Submit"/>: the label's id once stored, else why not.</summary>
public sealed record SubmitOutcome(SubmitStatus Status, long LabelId = 0, long AnnotatorLabels = 0, string? Problem = null);
