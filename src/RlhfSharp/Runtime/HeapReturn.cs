using System.Runtime.InteropServices;

namespace RlhfSharp.Runtime;

/// <summary>
/// Makes glibc give freed tensor memory back to the operating system. LibTorch's CPU allocator sits on <c>malloc</c>, and
/// glibc keeps what is freed in its heap for reuse; worse, after a large block is freed it raises its mmap threshold
/// (up to 32 MB) so that later blocks of that size come from the heap and stay resident once freed. A training step frees
/// large temporaries layer after layer (checkpointed activations, log-prob chunks, gradient pieces), so the process's
/// peak grew past what the step ever held at once: a Qwen2.5-0.5B SFT step peaked at 9,125 MB, and 7,870 MB with the
/// threshold below (docs/PERFORMANCE.md). Setting <c>M_MMAP_THRESHOLD</c> to 64 KiB makes every block of 64 KiB or more
/// its own mapping, unmapped when freed, and switches the dynamic raise off (glibc <c>mallopt(3)</c>). A
/// <c>MALLOC_MMAP_THRESHOLD_</c> in the environment is the user's choice and is left as glibc read it.
/// </summary>
public static class HeapReturn
{
    /// <summary>glibc's <c>M_MMAP_THRESHOLD</c> (malloc.h).</summary>
    const int MmapThreshold = -3;

    /// <summary>The threshold set: 64 KiB, glibc's smallest sensible value above its 128 KiB default's typical small blocks.</summary>
    public const int ThresholdBytes = 64 * 1024;

    [DllImport("libc", EntryPoint = "mallopt")] static extern int MallOpt(int param, int value);

    /// <summary>Sets the threshold on Linux with glibc; returns whether it was set (false elsewhere, or when the environment sets it).</summary>
    public static bool Apply()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") is not null) return false;
        try
        {
            return MallOpt(MmapThreshold, ThresholdBytes) == 1;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return false; // not glibc (musl's mallopt is a no-op stub; other libcs may lack it)
        }
    }
}
