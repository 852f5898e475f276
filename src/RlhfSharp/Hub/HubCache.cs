namespace RlhfSharp.Hub;

/// <summary>
/// The Hugging Face cache as huggingface_hub lays it out (its <c>file_download.py</c> and the "Understand caching"
/// guide), so files Python downloaded are used as they are and Python uses ours:
/// <code>
/// {cache}/models--org--name/
///   blobs/{etag}                     the content, named by its git-sha1 (small files) or sha256 (LFS files)
///   blobs/{etag}.incomplete          a download in progress, resumed with HTTP Range
///   refs/{revision}                  the commit hash a branch or tag pointed to when last asked (no newline)
///   snapshots/{commit}/{path}        a relative symlink to ../../blobs/{etag} (a copy where links are refused)
///   .no_exist/{commit}/{path}        an empty file: the Hub said this optional file is not there
/// {cache}/.locks/models--org--name/{etag}.lock   held while a blob is written
/// </code>
/// </summary>
public sealed class HubCache(string root)
{
    /// <summary>The cache folder (HF_HUB_CACHE).</summary>
    public string Root { get; } = root;

    /// <summary>The repository's folder.</summary>
    public string RepoDir(HubRepo repo) => Path.Combine(Root, repo.FolderName);

    /// <summary>Where a blob is stored.</summary>
    public string BlobPath(HubRepo repo, string etag) => Path.Combine(RepoDir(repo), "blobs", etag);

    /// <summary>The snapshot folder of a commit.</summary>
    public string SnapshotDir(HubRepo repo, string commit) => Path.Combine(RepoDir(repo), "snapshots", commit);

    /// <summary>The lock file huggingface_hub takes around writing a blob (flock, as Python's filelock does).</summary>
    public string LockPath(HubRepo repo, string etag) => Path.Combine(Root, ".locks", repo.FolderName, etag + ".lock");

    /// <summary>The commit <paramref name="repo"/>'s revision resolves to in the cache: the revision itself when it is a commit, else refs/{revision}.</summary>
    public string? Commit(HubRepo repo)
    {
        if (repo.RevisionIsCommit) return repo.Revision;
        string refFile = Path.Combine(RepoDir(repo), "refs", repo.Revision);
        return File.Exists(refFile) ? File.ReadAllText(refFile).Trim() : null;
    }

    /// <summary>Records that <paramref name="repo"/>'s revision points at <paramref name="commit"/> (written to a temp file and renamed).</summary>
    public void WriteRef(HubRepo repo, string commit)
    {
        if (repo.RevisionIsCommit && repo.Revision == commit) return;
        string refFile = Path.Combine(RepoDir(repo), "refs", repo.Revision);
        if (File.Exists(refFile) && File.ReadAllText(refFile).Trim() == commit) return;
        Directory.CreateDirectory(Path.GetDirectoryName(refFile)!);
        string tmp = refFile + $".{Environment.ProcessId}.tmp";
        File.WriteAllText(tmp, commit);
        File.Move(tmp, refFile, overwrite: true);
    }

    /// <summary>The cached file <paramref name="file"/> of a commit, or null.</summary>
    public string? SnapshotFile(HubRepo repo, string commit, string file)
    {
        string path = Path.Combine(SnapshotDir(repo, commit), file);
        return Present(path) ? path : null;
    }

    /// <summary>A file, or a link whose target exists: a dangling link (its blob deleted) is not a cached file.</summary>
    public static bool Present(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) return false;
        return info.LinkTarget is null || info.ResolveLinkTarget(returnFinalTarget: true) is { Exists: true };
    }

    /// <summary>Whether the Hub said <paramref name="file"/> does not exist at <paramref name="commit"/>.</summary>
    public bool KnownMissing(HubRepo repo, string commit, string file) =>
        File.Exists(Path.Combine(RepoDir(repo), ".no_exist", commit, file));

    /// <summary>Remembers that an optional file is absent at a commit, as huggingface_hub does, so offline runs need not ask.</summary>
    public void MarkMissing(HubRepo repo, string commit, string file)
    {
        string path = Path.Combine(RepoDir(repo), ".no_exist", commit, file);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, []);
    }

    /// <summary>
    /// Points snapshots/{commit}/{file} at blobs/{etag} with a relative symlink (huggingface_hub <c>_create_symlink</c>:
    /// relative so the cache folder can be moved); copies the blob where the file system refuses links.
    /// </summary>
    public string LinkSnapshot(HubRepo repo, string commit, string file, string etag)
    {
        string pointer = Path.Combine(SnapshotDir(repo, commit), file);
        string blob = BlobPath(repo, etag);
        Directory.CreateDirectory(Path.GetDirectoryName(pointer)!);
        string relative = Path.GetRelativePath(Path.GetDirectoryName(pointer)!, blob);
        string tmp = pointer + $".{Environment.ProcessId}.tmp";
        File.Delete(tmp);
        try { File.CreateSymbolicLink(tmp, relative); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            File.Copy(blob, tmp, overwrite: true);
        }
        File.Move(tmp, pointer, overwrite: true);
        return pointer;
    }
}
