using System.Runtime.InteropServices;

namespace RlhfSharp.Runtime;

/// <summary>
/// Loads a shared object into the process's global symbol scope (<c>dlopen</c> with <c>RTLD_GLOBAL</c>), so its
/// definitions take precedence over those of libraries loaded later with local scope. .NET's
/// <c>NativeLibrary.Load</c> opens libraries <c>RTLD_LOCAL</c>, hence the direct calls to the C library.
/// </summary>
static class GlobalLibrary
{
    const int RtldLazy = 0x1, RtldNow = 0x2, RtldNoload = 0x4, RtldGlobal = 0x100;
    const uint MfdCloexec = 0x1;

    // glibc ≥ 2.34 has dlopen in libc.so.6; older ones only in libdl.so.2.
    [DllImport("libc", EntryPoint = "dlopen")] static extern IntPtr DlOpenC(string? file, int mode);
    [DllImport("libc", EntryPoint = "dlerror")] static extern IntPtr DlErrorC();
    [DllImport("libc", EntryPoint = "dlclose")] static extern int DlCloseC(IntPtr handle);
    [DllImport("libc", EntryPoint = "dlsym")] static extern IntPtr DlSymC(IntPtr handle, string symbol);
    [DllImport("libdl.so.2", EntryPoint = "dlopen")] static extern IntPtr DlOpenDl(string? file, int mode);
    [DllImport("libdl.so.2", EntryPoint = "dlerror")] static extern IntPtr DlErrorDl();
    [DllImport("libdl.so.2", EntryPoint = "dlclose")] static extern int DlCloseDl(IntPtr handle);
    [DllImport("libdl.so.2", EntryPoint = "dlsym")] static extern IntPtr DlSymDl(IntPtr handle, string symbol);
    [DllImport("libc", SetLastError = true)] static extern int memfd_create(string name, uint flags);
    [DllImport("libc", SetLastError = true)] static extern int close(int fd);
    [DllImport("libc", SetLastError = true)] static extern nint write(int fd, byte[] buffer, nint count);

    static bool? inLibc;

    static bool InLibc
    {
        get
        {
            if (inLibc is bool known) return known;
            try { DlErrorC(); inLibc = true; }
            catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { inLibc = false; }
            return inLibc.Value;
        }
    }

    static IntPtr DlOpen(string? file, int mode) => InLibc ? DlOpenC(file, mode) : DlOpenDl(file, mode);
    static int DlClose(IntPtr handle) => InLibc ? DlCloseC(handle) : DlCloseDl(handle);
    static string DlError() => Marshal.PtrToStringUTF8(InLibc ? DlErrorC() : DlErrorDl()) ?? "unknown dlopen error";

    /// <summary>
    /// Loads <paramref name="image"/> (an ELF shared object) with global scope and keeps it loaded for the life of
    /// the process. The bytes go to an anonymous memory file (<c>memfd_create</c>), so nothing is written to disk
    /// and a <c>noexec</c> temp folder does not matter; where memfd is unavailable, to a file in the temp folder.
    /// Returns null on success, else the loader's message.
    /// </summary>
    public static string? Load(byte[] image, string name)
    {
        int fd = -1;
        try { fd = memfd_create(name, MfdCloexec); }
        catch (EntryPointNotFoundException) { }
        if (fd >= 0)
        {
            try
            {
                int done = 0;
                while (done < image.Length)
                {
                    nint n = write(fd, image[done..], image.Length - done);
                    if (n <= 0) break;
                    done += (int)n;
                }
                if (done == image.Length && DlOpen($"/proc/self/fd/{fd}", RtldNow | RtldGlobal) != IntPtr.Zero) return null;
            }
            finally { close(fd); }
        }
        // Fallback: a content-named file, written to a temporary name and renamed (concurrent processes agree).
        string path = Path.Combine(Path.GetTempPath(), $"{name}-{Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(image))[..16]}.so");
        try
        {
            if (!File.Exists(path))
            {
                string tmp = $"{path}.{Environment.ProcessId}.tmp";
                File.WriteAllBytes(tmp, image);
                File.Move(tmp, path, overwrite: true);
            }
        }
        catch (IOException e) { return e.Message; }
        catch (UnauthorizedAccessException e) { return e.Message; }
        return DlOpen(path, RtldNow | RtldGlobal) != IntPtr.Zero ? null : DlError();
    }

    /// <summary>Whether a library with this name is already loaded in the process (<c>RTLD_NOLOAD</c>).</summary>
    public static bool IsLoaded(string soname)
    {
        var handle = DlOpen(soname, RtldLazy | RtldNoload);
        if (handle == IntPtr.Zero) { DlError(); return false; }
        DlClose(handle);
        return true;
    }

    /// <summary>
    /// Whether <paramref name="symbol"/> resolves in the global scope (<c>dlsym(RTLD_DEFAULT, …)</c>): true for a
    /// definition in the executable or in a library loaded with <c>RTLD_GLOBAL</c>, false for one only inside a
    /// library loaded with local scope (libtorch_cpu.so under .NET).
    /// </summary>
    public static bool ResolvesGlobally(string symbol)
    {
        IntPtr address = InLibc ? DlSymC(IntPtr.Zero, symbol) : DlSymDl(IntPtr.Zero, symbol);
        return address != IntPtr.Zero;
    }
}
