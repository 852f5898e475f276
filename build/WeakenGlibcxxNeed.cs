using System;
using System.IO;
using System.Text;
#if !ELF_ONLY
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
#endif

/// <summary>
/// Sets VER_FLG_WEAK on the Vernaux entry that asks for <see cref="Version"/> in every ELF file of
/// <see cref="Directory"/> that asks for it, when the system's libstdc++.so.6 does not define it.
/// The file is rewritten through a temporary copy and a rename, so a hard link into the NuGet cache
/// is never written through.
/// </summary>
public class WeakenGlibcxxNeed
#if !ELF_ONLY
    : Task
#endif
{
    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

#if !ELF_ONLY
    [Required] public string Directory { get; set; } = "";
    [Required] public string Version { get; set; } = "";

    static readonly string[] LibStdCxxCandidates =
    {
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib/aarch64-linux-gnu/libstdc++.so.6",
        "/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6",
    };

    public override bool Execute()
    {
        byte[] wanted = Encoding.ASCII.GetBytes(Version);
        foreach (var candidate in LibStdCxxCandidates)
        {
            if (File.Exists(candidate) && IndexOf(File.ReadAllBytes(candidate), wanted) >= 0)
            {
                Log.LogMessage(MessageImportance.Low, $"{candidate} defines {Version}; nothing to patch.");
                return true;
            }
        }
        foreach (var path in System.IO.Directory.GetFiles(Directory, "*.so*"))
        {
            byte[] elf = File.ReadAllBytes(path);
            int patched = Weaken(elf, Version);
            if (patched == 0) continue;
            string tmp = path + ".weak-tmp";
            File.WriteAllBytes(tmp, elf);
            File.Replace(tmp, path, null);
            Log.LogMessage(MessageImportance.High, $"Marked {Version} weak in {Path.GetFileName(path)} (system libstdc++ lacks it).");
        }
        return !Log.HasLoggedErrors;
    }
#endif

    /// <summary>Returns how many Vernaux entries were newly marked weak.</summary>
    public static int Weaken(byte[] elf, string version)
    {
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F') return 0;
        if (elf[4] != 2 || elf[5] != 1) return 0; // only ELF64 little-endian
        long shoff = BitConverter.ToInt64(elf, 0x28);
        int shentsize = BitConverter.ToUInt16(elf, 0x3A);
        int shnum = BitConverter.ToUInt16(elf, 0x3C);
        int count = 0;
        for (int i = 0; i < shnum; i++)
        {
            long sh = shoff + (long)i * shentsize;
            if (BitConverter.ToUInt32(elf, (int)sh + 4) != ShtGnuVerneed) continue;
            long offset = BitConverter.ToInt64(elf, (int)sh + 0x18);
            int link = (int)BitConverter.ToUInt32(elf, (int)sh + 0x28);
            int entries = (int)BitConverter.ToUInt32(elf, (int)sh + 0x2C);
            long strtab = BitConverter.ToInt64(elf, (int)(shoff + (long)link * shentsize) + 0x18);
            long vn = offset;
            for (int e = 0; e < entries; e++)
            {
                int cnt = BitConverter.ToUInt16(elf, (int)vn + 2);
                long aux = vn + BitConverter.ToUInt32(elf, (int)vn + 8);
                for (int a = 0; a < cnt; a++)
                {
                    long name = strtab + BitConverter.ToUInt32(elf, (int)aux + 8);
                    if (ReadCString(elf, name) == version)
                    {
                        ushort flags = BitConverter.ToUInt16(elf, (int)aux + 4);
                        if ((flags & VerFlgWeak) == 0)
                        {
                            flags |= VerFlgWeak;
                            elf[aux + 4] = (byte)flags;
                            elf[aux + 5] = (byte)(flags >> 8);
                            count++;
                        }
                    }
                    aux += BitConverter.ToUInt32(elf, (int)aux + 12);
                }
                uint next = BitConverter.ToUInt32(elf, (int)vn + 12);
                if (next == 0) break;
                vn += next;
            }
        }
        return count;
    }

    static string ReadCString(byte[] b, long at)
    {
        long end = at;
        while (end < b.Length && b[end] != 0) end++;
        return Encoding.ASCII.GetString(b, (int)at, (int)(end - at));
    }

    static int IndexOf(byte[] haystack, byte[] needle)
    {
        for (int i = 0; i <= haystack.Length - needle.Length; i++)
        {
            int j = 0;
            while (j < needle.Length && haystack[i + j] == needle[j]) j++;
            if (j == needle.Length && (i + j == haystack.Length || haystack[i + j] == 0)) return i;
        }
        return -1;
    }
}
