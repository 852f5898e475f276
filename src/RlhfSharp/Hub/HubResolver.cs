namespace RlhfSharp.Hub;

/// <summary>
/// Turns a Hub model id (<c>org/name[@revision]</c>) or data file (<c>hf://datasets/org/name[@revision]/path</c>) into a
/// local path: from the Hugging Face cache when it is there, else downloaded into it from <c>HF_ENDPOINT</c>
/// (never with <c>HF_HUB_OFFLINE=1</c>). Follows huggingface_hub's <c>hf_hub_download</c> and <c>snapshot_download</c>
/// (file_download.py, _snapshot_download.py): the revision is resolved to a commit once, each file's blob is
/// written under its ETag and checked against it, snapshots link to blobs, refs/{revision} is written last.
/// A revision already in the cache is used without asking the Hub (pin a commit, or delete refs/{revision}, to refresh).
/// </summary>
public sealed class HubResolver(HubSettings settings, IDownloadDisplay? display = null)
{
    /// <summary>The display downloads use when none is passed: the CLI sets its progress bars here once at start.</summary>
    public static IDownloadDisplay? DefaultDisplay { get; set; }

    /// <summary>A resolver for the environment's settings (HF_* variables) and <see cref="DefaultDisplay"/>.</summary>
    public static HubResolver FromEnvironment() => new(HubSettings.FromEnvironment(), DefaultDisplay);

    readonly HubCache cache = new(settings.CacheDir);

    /// <summary>The settings in use.</summary>
    public HubSettings Settings => settings;

    /// <summary>The cache in use.</summary>
    public HubCache Cache => cache;

    /// <summary>
    /// The snapshot folder of a model repository holding what loading needs (<see cref="ModelFiles"/>), from the cache
    /// or downloaded.
    /// </summary>
    /// <exception cref="RlhfException">Offline and not cached, no network, 401/403/404, a checksum mismatch, a full disk.</exception>
    public string ResolveModel(HubRepo repo)
    {
        string? commit = cache.Commit(repo);
        IReadOnlyList<string> missing = ["config.json"];
        if (commit is not null)
        {
            string dir = cache.SnapshotDir(repo, commit);
            missing = Directory.Exists(dir) ? ModelFiles.Missing(dir, f => cache.KnownMissing(repo, commit, f)) : missing;
            if (missing.Count == 0) return dir;
            // Offline, a snapshot with config and weights but no tokenizer files is still what the user has: the loader says what lacks.
            if (settings.Offline && Directory.Exists(dir) && missing.SequenceEqual(["tokenizer.json"])) return dir;
        }
        if (settings.Offline)
            throw new RlhfException(commit is null
                ? $"{repo}: HF_HUB_OFFLINE is set and the model is not in the Hugging Face cache ({cache.RepoDir(repo)}). Download it once with the network on, or unset HF_HUB_OFFLINE."
                : $"{repo}: HF_HUB_OFFLINE is set and the cached snapshot {cache.SnapshotDir(repo, commit)} lacks {string.Join(", ", missing)}. Download it once with the network on, or unset HF_HUB_OFFLINE.");

        using var client = new HubClient(settings);
        var (resolved, files) = client.RepoInfo(repo);
        var wanted = ModelFiles.Select(repo, files);
        string snapshot = Show($"{repo}", progress =>
        {
            foreach (var file in wanted) Fetch(client, repo, resolved, file, null, progress);
            if (wanted.Contains(ModelFiles.WeightsIndex))
                foreach (var shard in ModelFiles.Shards(Path.Combine(cache.SnapshotDir(repo, resolved), ModelFiles.WeightsIndex)))
                    Fetch(client, repo, resolved, shard, null, progress);
            return cache.SnapshotDir(repo, resolved);
        });
        // Optional files the repository does not have: remembered so an offline run (ours or Python's) need not ask.
        foreach (var absent in ModelFiles.Optional.Except(files)) cache.MarkMissing(repo, resolved, absent);
        cache.WriteRef(repo, resolved);
        return snapshot;
    }

    /// <summary>
    /// The local path of a data file: <paramref name="path"/> itself unless it is an <c>hf://</c> URI, else the cached
    /// or downloaded file of that repository.
    /// </summary>
    public string ResolveFile(string path)
    {
        if (!HubRepo.IsHubUri(path)) return path;
        var (repo, file) = HubRepo.ParseUri(path);
        if (cache.Commit(repo) is { } commit && cache.SnapshotFile(repo, commit, file) is { } cached) return cached;
        if (settings.Offline)
            throw new RlhfException($"{path}: HF_HUB_OFFLINE is set and the file is not in the Hugging Face cache ({cache.RepoDir(repo)}). Download it once with the network on, or unset HF_HUB_OFFLINE.");
        using var client = new HubClient(settings);
        var meta = client.Metadata(repo, repo.Revision, file)!;
        string local = Show(path, progress => Fetch(client, repo, meta.Commit, file, meta, progress));
        cache.WriteRef(repo, meta.Commit);
        return local;
    }

    /// <summary>
    /// One file of a commit into the cache (huggingface_hub <c>hf_hub_download</c> with the revision already a commit):
    /// the blob is downloaded to {etag}.incomplete (resumed if one is there), checked, renamed, then linked from the
    /// snapshot, so a snapshot never shows a partial file.
    /// </summary>
    string Fetch(HubClient client, HubRepo repo, string commit, string file, HubFileMetadata? meta, IProgress<DownloadProgress>? progress)
    {
        if (cache.SnapshotFile(repo, commit, file) is { } cached) return cached;
        meta ??= client.Metadata(repo, commit, file)!;
        string blob = cache.BlobPath(repo, meta.Etag);
        if (!HubCache.Present(blob))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
            using var held = Lock(cache.LockPath(repo, meta.Etag));
            if (!HubCache.Present(blob))
            {
                string partial = blob + ".incomplete";
                CheckSpace(repo, file, blob, meta.Size - (File.Exists(partial) ? new FileInfo(partial).Length : 0));
                client.Download(meta.Location, repo, file, partial, meta.Size, bytes => progress?.Report(new DownloadProgress(file, bytes, meta.Size)));
                if (BlobChecksum.Compute(partial, meta.Etag) is { } digest && digest != meta.Etag)
                {
                    File.Delete(partial);
                    throw new RlhfException($"{repo}: {file} arrived corrupted: its {(meta.Etag.Length == 64 ? "sha256" : "git sha1")} is {digest} but the Hub's ETag says {meta.Etag}. The bad copy was removed; rerun to download it again.");
                }
                File.Move(partial, blob, overwrite: true);
            }
        }
        return cache.LinkSnapshot(repo, commit, file, meta.Etag);
    }

    T Show<T>(string title, Func<IProgress<DownloadProgress>?, T> work) =>
        display is null ? work(null) : display.Show(title, p => work(p));

    /// <summary>
    /// Holds the blob's lock file exclusively. .NET takes FileShare.None on Unix with flock, the lock Python's filelock
    /// takes, so our ranks under mpirun and a Python process never write the same blob at once.
    /// </summary>
    static FileStream Lock(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var until = DateTime.UtcNow.AddMinutes(30);
        while (true)
        {
            try { return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
            catch (IOException) when (DateTime.UtcNow < until) { Thread.Sleep(250); }
            catch (IOException e) { throw new RlhfException($"{path}: another process has held this download lock for 30 minutes ({e.Message}); if none is downloading, delete the file."); }
        }
    }

    /// <summary>Refuses a download that cannot fit, before writing (huggingface_hub only warns; a CPU box's disk fills mid-shard).</summary>
    static void CheckSpace(HubRepo repo, string file, string blob, long needed)
    {
        long free;
        try { free = new DriveInfo(Path.GetDirectoryName(Path.GetFullPath(blob))!).AvailableFreeSpace; }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException) { return; }
        if (needed > free)
            throw new RlhfException($"{repo}: {file} needs {needed:N0} bytes but {Path.GetDirectoryName(blob)} has {free:N0} free. Free space or set HF_HUB_CACHE to a larger disk; nothing was written.");
    }
}
