namespace RlhfSharp.Checkpoints;

/// <summary>
/// Puts a fully written folder in place of another with renames only, so readers see the old folder or
/// the new one, never a mix, and a crash mid-way leaves at least one complete copy. The new folder's files are
/// synced to the disk before the rename and the parent after it (<see cref="Durable"/>).
/// </summary>
public static class AtomicDirectory
{
    public static void Replace(string writtenTmp, string target)
    {
        Durable.SyncFolder(writtenTmp);
        string parent = Path.GetDirectoryName(Path.GetFullPath(target))!;
        if (!Directory.Exists(target))
        {
            Directory.Move(writtenTmp, target);
            Durable.SyncDirectory(parent);
            return;
        }
        string old = target + $".old-{Guid.NewGuid():N}";
        Directory.Move(target, old);
        Directory.Move(writtenTmp, target);
        Durable.SyncDirectory(parent);
        Directory.Delete(old, recursive: true);
    }

    /// <summary>
    /// Writes the folder <paramref name="target"/>: <paramref name="fill"/> writes into a temporary folder beside it (after
    /// what a killed writer left there is removed), which then <see cref="Replace"/>s the target. When anything fails the
    /// temporary folder is deleted and the target is as it was. Every checkpoint folder (HF models, T5, PEFT adapters) is saved so.
    /// </summary>
    public static void Write(string target, Action<string> fill)
    {
        string full = Path.GetFullPath(target);
        string parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        RemoveLeftovers(full);
        string tmp = Path.Combine(parent, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(tmp);
        try
        {
            fill(tmp);
            Replace(tmp, full);
        }
        catch
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
            throw;
        }
    }

    /// <summary>
    /// Deletes what a killed writer left beside <paramref name="target"/>: its temporary folders (<c>.name.tmp-*</c>)
    /// and a previous copy it had moved aside (<c>name.old-*</c>). Only for targets one process writes at a time.
    /// </summary>
    public static void RemoveLeftovers(string target)
    {
        string full = Path.GetFullPath(target);
        string parent = Path.GetDirectoryName(full)!, name = Path.GetFileName(full);
        if (!Directory.Exists(parent)) return;
        foreach (var dir in Directory.EnumerateDirectories(parent, $".{name}.tmp-*").Concat(Directory.EnumerateDirectories(parent, $"{name}.old-*")))
            Directory.Delete(dir, recursive: true);
    }
}
