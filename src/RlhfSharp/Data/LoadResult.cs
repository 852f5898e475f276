namespace RlhfSharp.Data;

/// <summary>What a <see cref="DatasetLoader"/> method read: the records, and how many rows were skipped as invalid.</summary>
/// <param name="Records">The valid records, in file order.</param>
/// <param name="Skipped">Rows dropped because they were malformed; always 0 unless skipInvalid was set.</param>
public sealed record LoadResult<T>(IReadOnlyList<T> Records, int Skipped);
