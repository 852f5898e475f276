using System.Runtime.InteropServices;

namespace RlhfSharp.Tests.Runtime;

/// <summary>A fact that runs only where the oneMKL fast path applies: Linux on x86-64 with AVX2 (else skipped, with the reason).</summary>
public sealed class OneMklFactAttribute : FactAttribute
{
    public OneMklFactAttribute()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) Skip = "oneMKL interposition: x86-64 Linux only";
        else if (!System.Runtime.Intrinsics.X86.Avx2.IsSupported) Skip = "oneMKL interposition: the CPU has no AVX2";
    }
}
