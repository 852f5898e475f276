namespace RlhfSharp.Labeling;

/// <summary>What <see cref="LabelStore.Undo"/> took back: a label (its id and what it said) or a skip (both null), and the assignment, open again.</summary>
public sealed record UndoOutcome(long? LabelId, Assignment Assignment, LabelSubmission? Previous);
