namespace RlhfSharp.Checkpoints;

/// <summary>
/// Puts a fully written folder in place of another with renames only, so readers see the old folder or
/// the new one, never a mix, and a crash mid-way leaves at least one complete copy.
/// </summary>
public static class AtomicDirectory
{
    public static void Replace(string writtenTmp, string target)
    {
        if (!Directory.Exists(target))
        {
            Directory.Move(writtenTmp, target);
            return;
        }
        string old = target + $".old-{Guid.NewGuid():N}";
        Directory.Move(target, old);
        Directory.Move(writtenTmp, target);
        Directory.Delete(old, recursive: true);
    }
}
