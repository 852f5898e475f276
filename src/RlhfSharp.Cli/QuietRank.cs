using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace RlhfSharp.Cli;

/// <summary>
/// Under mpirun rank 0 speaks for every rank (progress, numbers, messages); the others print only their errors.
/// Silenced at the file descriptors, not just Console.Out: .NET's terminal setup and native libraries write to fd 1 and 2
/// directly.
/// </summary>
static class QuietRank
{
    [DllImport("libc", SetLastError = true)] static extern int dup(int fd);
    [DllImport("libc", SetLastError = true)] static extern int dup2(int fd, int target);
    [DllImport("libc", SetLastError = true)] static extern int open(string path, int flags);
    const int WriteOnly = 1;

    /// <summary>Points stdout and stderr at /dev/null; returns a writer on the original stderr, for errors.</summary>
    public static TextWriter Silence()
    {
        int stderr = dup(2), devNull = open("/dev/null", WriteOnly);
        if (stderr < 0 || devNull < 0) return Console.Error;
        dup2(devNull, 1);
        dup2(devNull, 2);
        Console.SetOut(TextWriter.Null);
        Console.SetError(TextWriter.Null);
        return new StreamWriter(new FileStream(new SafeFileHandle(stderr, ownsHandle: true), FileAccess.Write)) { AutoFlush = true };
    }
}
