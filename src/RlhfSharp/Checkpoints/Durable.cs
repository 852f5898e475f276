using System.Runtime.InteropServices;
using System.Text;

namespace RlhfSharp.Checkpoints;

/// <summary>
/// Writes that survive a kill or a power cut: data is flushed to the disk (fsync) before a rename publishes it, and
/// the folder holding the rename is flushed after, so after a crash a name points at complete data or at nothing
/// (the ext4/XFS rule: a rename is durable only once its directory is synced).
/// </summary>
public static class Durable
{
    /// <summary>Writes <paramref name="text"/> to a temporary file beside <paramref name="path"/>, syncs it, renames it into place.</summary>
    public static void WriteAllText(string path, string text)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        // What a writer killed mid-way left (one writer per file, as a run folder has).
        foreach (var stale in Directory.EnumerateFiles(dir, $".{Path.GetFileName(full)}.tmp-*")) TryDelete(stale);
        string tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        try
        {
            using (var stream = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
            {
                stream.Write(new UTF8Encoding(false).GetBytes(text));
                stream.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
        SyncDirectory(dir);
    }

    /// <summary>
    /// Fails early, with the folder named, when <paramref name="dir"/> (or, while it does not exist, the nearest folder
    /// above it) cannot be written: a probe file is created and deleted, so nothing is left behind.
    /// </summary>
    public static void CheckWritable(string dir)
    {
        string existing = Path.GetFullPath(dir);
        while (!Directory.Exists(existing))
        {
            // Otherwise the first write fails with "not a directory", which reads like a full disk.
            if (File.Exists(existing)) throw new RlhfException($"{existing} is a file, not a folder: give --out a folder (new or empty) for the run.");
            existing = Path.GetDirectoryName(existing) ?? throw new RlhfException($"{dir}: no such folder.");
        }
        string probe = Path.Combine(existing, $".rlhf-write-probe-{Guid.NewGuid():N}");
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RlhfException($"{existing}: cannot write the run here ({e.Message}): choose another --out or make the folder writable.");
        }
    }

    /// <summary>Flushes a written file's data to the disk.</summary>
    public static void SyncFile(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        stream.Flush(flushToDisk: true);
    }

    /// <summary>Flushes every file of a folder (not its subfolders), then the folder's own entries.</summary>
    public static void SyncFolder(string dir)
    {
        foreach (var file in Directory.EnumerateFiles(dir)) SyncFile(file);
        SyncDirectory(dir);
    }

    /// <summary>Flushes a folder's entries (creations and renames inside it); a no-op where folders cannot be opened (Windows).</summary>
    public static void SyncDirectory(string dir)
    {
        if (OperatingSystem.IsWindows()) return;
        int fd = open(dir, 0); // O_RDONLY
        if (fd < 0) return;
        try { fsync(fd); }
        finally { close(fd); }
    }

    static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    [DllImport("libc", SetLastError = true)] static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);
    [DllImport("libc", SetLastError = true)] static extern int fsync(int fd);
    [DllImport("libc", SetLastError = true)] static extern int close(int fd);
}
