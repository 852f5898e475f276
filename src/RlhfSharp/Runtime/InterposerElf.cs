using System.Buffers.Binary;
using System.Text;

namespace RlhfSharp.Runtime;

/// <summary>
/// Writes, byte by byte, the smallest valid x86-64 ELF shared object that exports one function returning a constant:
/// <c>int name(void) { return value; }</c>, i.e. <c>mov eax, value; ret</c>. It is what a C compiler and linker
/// would produce for that one line, without needing either on the user's machine (docs/ARCHITECTURE.md, "oneMKL on
/// AMD"). Written by hand because no .NET library emits ELF objects; the layout follows the System V gABI and the
/// x86-64 psABI, and the output is the same bytes on every machine.
/// </summary>
/// <remarks>
/// Layout: ELF header; four program headers (a read+execute <c>PT_LOAD</c> holding <c>.hash</c>, <c>.dynsym</c>,
/// <c>.dynstr</c> and <c>.text</c>; a read+write <c>PT_LOAD</c> holding <c>.dynamic</c>, on its own page because
/// older glibc relocates the dynamic section in place; <c>PT_DYNAMIC</c>; and <c>PT_GNU_STACK</c> without execute,
/// so loading it never makes the thread stacks executable); then section headers so readelf, nm and objdump can
/// read it. No relocations: the code is position independent.
/// </remarks>
public static class InterposerElf
{
    const int EhSize = 64, PhEntSize = 56, ShEntSize = 64, SymEntSize = 24, DynEntSize = 16, PageSize = 0x1000;
    const int PhCount = 4;
    const uint PtLoad = 1, PtDynamic = 2, PtGnuStack = 0x6474e551;
    const uint PfX = 1, PfW = 2, PfR = 4;
    const uint ShtProgbits = 1, ShtStrtab = 3, ShtHash = 5, ShtDynamic = 6, ShtDynsym = 11;
    const ulong ShfWrite = 1, ShfAlloc = 2, ShfExecinstr = 4;
    const long DtNull = 0, DtHash = 4, DtStrtab = 5, DtSymtab = 6, DtStrsz = 10, DtSyment = 11, DtSoname = 14;

    /// <summary>The ELF image of a shared object named <paramref name="soname"/> exporting <paramref name="symbol"/>.</summary>
    /// <param name="soname">DT_SONAME, e.g. <c>librlhf-mkl-intel-path.so</c>.</param>
    /// <param name="symbol">The exported function (a global <c>STT_FUNC</c> with default visibility).</param>
    /// <param name="value">What the function returns in <c>eax</c>.</param>
    public static byte[] SharedObject(string soname, string symbol, int value)
    {
        // .text: mov eax, imm32 (B8 id); ret (C3)
        var text = new byte[6];
        text[0] = 0xB8;
        BinaryPrimitives.WriteInt32LittleEndian(text.AsSpan(1), value);
        text[5] = 0xC3;

        // .dynstr: "\0" soname "\0" symbol "\0"
        var dynstr = new List<byte> { 0 };
        int sonameOffset = dynstr.Count; dynstr.AddRange(Encoding.ASCII.GetBytes(soname)); dynstr.Add(0);
        int symbolOffset = dynstr.Count; dynstr.AddRange(Encoding.ASCII.GetBytes(symbol)); dynstr.Add(0);

        // .shstrtab
        string[] sectionNames = ["", ".hash", ".dynsym", ".dynstr", ".text", ".dynamic", ".shstrtab"];
        var shstrtab = new List<byte>();
        var nameOffsets = new int[sectionNames.Length];
        for (int i = 0; i < sectionNames.Length; i++)
        {
            nameOffsets[i] = shstrtab.Count;
            shstrtab.AddRange(Encoding.ASCII.GetBytes(sectionNames[i])); shstrtab.Add(0);
        }
        nameOffsets[0] = 0;

        // File offsets (the read+execute segment maps the file from 0 at address 0, so offset = address there).
        int hashOff = EhSize + PhCount * PhEntSize;
        const int symCount = 2;                                 // the null symbol and ours
        int hashSize = 4 * (2 + 1 + symCount);                  // nbucket, nchain, one bucket, one chain per symbol
        int dynsymOff = Align(hashOff + hashSize, 8);
        int dynstrOff = dynsymOff + symCount * SymEntSize;
        int textOff = Align(dynstrOff + dynstr.Count, 16);
        int textEnd = textOff + text.Length;
        int dynamicOff = Align(textEnd, 8);
        const int dynCount = 7;
        int dynamicSize = dynCount * DynEntSize;
        long dynamicAddr = dynamicOff + PageSize;               // next page, same offset within it (p_offset ≡ p_vaddr mod align)
        int shstrtabOff = dynamicOff + dynamicSize;
        int shOff = Align(shstrtabOff + shstrtab.Count, 8);
        var elf = new byte[shOff + sectionNames.Length * ShEntSize];
        var s = elf.AsSpan();

        // ELF header
        s[0] = 0x7F; s[1] = (byte)'E'; s[2] = (byte)'L'; s[3] = (byte)'F';
        s[4] = 2;   // ELFCLASS64
        s[5] = 1;   // ELFDATA2LSB
        s[6] = 1;   // EV_CURRENT
        s[7] = 0;   // ELFOSABI_SYSV
        U16(s, 16, 3);          // ET_DYN
        U16(s, 18, 62);         // EM_X86_64
        U32(s, 20, 1);          // e_version
        U64(s, 24, 0);          // e_entry
        U64(s, 32, EhSize);     // e_phoff
        U64(s, 40, (ulong)shOff);
        U32(s, 48, 0);          // e_flags
        U16(s, 52, EhSize);
        U16(s, 54, PhEntSize);
        U16(s, 56, PhCount);
        U16(s, 58, ShEntSize);
        U16(s, 60, (ushort)sectionNames.Length);
        U16(s, 62, 6);          // e_shstrndx: .shstrtab

        // Program headers
        int ph = EhSize;
        ProgramHeader(s, ref ph, PtLoad, PfR | PfX, 0, 0, textEnd, PageSize);
        ProgramHeader(s, ref ph, PtLoad, PfR | PfW, dynamicOff, dynamicAddr, dynamicSize, PageSize);
        ProgramHeader(s, ref ph, PtDynamic, PfR | PfW, dynamicOff, dynamicAddr, dynamicSize, 8);
        ProgramHeader(s, ref ph, PtGnuStack, PfR | PfW, 0, 0, 0, 16);

        // .hash (SysV): one bucket; symbol 1 heads it; chains end at 0.
        U32(s, hashOff, 1);
        U32(s, hashOff + 4, symCount);
        U32(s, hashOff + 8, 1);
        U32(s, hashOff + 12, 0);
        U32(s, hashOff + 16, 0);

        // .dynsym: entry 0 is all zeros; entry 1 is our function, defined in .text (section 4).
        int sym = dynsymOff + SymEntSize;
        U32(s, sym, (uint)symbolOffset);
        s[sym + 4] = (1 << 4) | 2;      // STB_GLOBAL, STT_FUNC
        s[sym + 5] = 0;                 // STV_DEFAULT
        U16(s, sym + 6, 4);
        U64(s, sym + 8, (ulong)textOff);
        U64(s, sym + 16, (ulong)text.Length);

        dynstr.ToArray().CopyTo(s[dynstrOff..]);
        text.CopyTo(s[textOff..]);

        // .dynamic
        int d = dynamicOff;
        Dyn(s, ref d, DtHash, hashOff);
        Dyn(s, ref d, DtStrtab, dynstrOff);
        Dyn(s, ref d, DtSymtab, dynsymOff);
        Dyn(s, ref d, DtStrsz, dynstr.Count);
        Dyn(s, ref d, DtSyment, SymEntSize);
        Dyn(s, ref d, DtSoname, sonameOffset);
        Dyn(s, ref d, DtNull, 0);

        shstrtab.ToArray().CopyTo(s[shstrtabOff..]);

        // Section headers: null, .hash, .dynsym, .dynstr, .text, .dynamic, .shstrtab
        int sh = shOff + ShEntSize;
        Section(s, ref sh, nameOffsets[1], ShtHash, ShfAlloc, hashOff, hashOff, hashSize, link: 2, info: 0, align: 8, entSize: 4);
        Section(s, ref sh, nameOffsets[2], ShtDynsym, ShfAlloc, dynsymOff, dynsymOff, symCount * SymEntSize, link: 3, info: 1, align: 8, entSize: SymEntSize);
        Section(s, ref sh, nameOffsets[3], ShtStrtab, ShfAlloc, dynstrOff, dynstrOff, dynstr.Count, link: 0, info: 0, align: 1, entSize: 0);
        Section(s, ref sh, nameOffsets[4], ShtProgbits, ShfAlloc | ShfExecinstr, textOff, textOff, text.Length, link: 0, info: 0, align: 16, entSize: 0);
        Section(s, ref sh, nameOffsets[5], ShtDynamic, ShfAlloc | ShfWrite, dynamicAddr, dynamicOff, dynamicSize, link: 3, info: 0, align: 8, entSize: DynEntSize);
        Section(s, ref sh, nameOffsets[6], ShtStrtab, 0, 0, shstrtabOff, shstrtab.Count, link: 0, info: 0, align: 1, entSize: 0);
        return elf;
    }

    static int Align(int x, int a) => (x + a - 1) / a * a;
    static void U16(Span<byte> s, int at, ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(s[at..], v);
    static void U32(Span<byte> s, int at, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(s[at..], v);
    static void U64(Span<byte> s, int at, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(s[at..], v);

    static void ProgramHeader(Span<byte> s, ref int at, uint type, uint flags, long offset, long addr, long size, long align)
    {
        U32(s, at, type); U32(s, at + 4, flags);
        U64(s, at + 8, (ulong)offset); U64(s, at + 16, (ulong)addr); U64(s, at + 24, (ulong)addr);
        U64(s, at + 32, (ulong)size); U64(s, at + 40, (ulong)size); U64(s, at + 48, (ulong)align);
        at += PhEntSize;
    }

    static void Dyn(Span<byte> s, ref int at, long tag, long value)
    {
        U64(s, at, (ulong)tag); U64(s, at + 8, (ulong)value);
        at += DynEntSize;
    }

    static void Section(Span<byte> s, ref int at, int name, uint type, ulong flags, long addr, long offset, long size,
        uint link, uint info, long align, long entSize)
    {
        U32(s, at, (uint)name); U32(s, at + 4, type); U64(s, at + 8, flags);
        U64(s, at + 16, (ulong)addr); U64(s, at + 24, (ulong)offset); U64(s, at + 32, (ulong)size);
        U32(s, at + 40, link); U32(s, at + 44, info); U64(s, at + 48, (ulong)align); U64(s, at + 56, (ulong)entSize);
        at += ShEntSize;
    }
}
