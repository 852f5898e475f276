namespace RlhfSharp.Hub;

/// <summary>How far one file's download has come.</summary>
/// <param name="File">The file's path in the repository.</param>
/// <param name="Bytes">Bytes on disk, counting those kept from an interrupted download.</param>
/// <param name="Total">The file's size.</param>
public readonly record struct DownloadProgress(string File, long Bytes, long Total);

/// <summary>
/// Shows downloads while they run (the CLI draws Spectre.Console bars with bytes and rate). The library itself
/// prints nothing.
/// </summary>
public interface IDownloadDisplay
{
    /// <summary>Runs <paramref name="work"/>, showing the progress it reports, and returns its result.</summary>
    T Show<T>(string title, Func<IProgress<DownloadProgress>, T> work);
}
