using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using System.Text;

namespace RlhfSharp.Runtime;

/// <summary>Which kernels LibTorch's oneMKL is made to choose.</summary>
public enum MklCodePathKind
{
    /// <summary>Nothing loaded: oneMKL decides by itself (Intel CPUs, CPUs without AVX2, the opt-out).</summary>
    Default,
    /// <summary><c>mkl_serv_intel_cpu_true</c> interposed to return 1: oneMKL's Intel kernels on an AMD CPU.</summary>
    Intel,
    /// <summary>
    /// <c>mkl_serv_intel_cpu_true</c> interposed to return 0: oneMKL believes the CPU is not an Intel one. A diagnostic
    /// for tests and the benchmark, so an Intel machine can run oneMKL's non-Intel kernels too.
    /// </summary>
    NonIntel,
}

/// <summary>The decision and the reason, as the log line tells it.</summary>
public sealed record MklCodePathDecision(MklCodePathKind Kind, string Reason);

/// <summary>
/// LibTorch's float32 GEMM is oneMKL 2024.0, which runs slower kernels when its exported
/// <c>mkl_serv_intel_cpu_true</c> says the CPU is not an Intel one (on the AMD EPYC machines we measured, 142–148
/// against 190–208 GFLOP/s at 2048³; issue #17). <see cref="Apply"/> loads a one-function library that defines that
/// symbol to return 1 with global scope before TorchSharp loads LibTorch; libtorch_cpu.so calls it through its PLT,
/// so the dynamic loader binds the call to ours. No vendor binary is modified and nothing is compiled on the user's
/// machine: <see cref="InterposerElf"/> writes the library's bytes. It is on by default on AMD x86-64 CPUs with AVX2;
/// Intel CPUs and CPUs without AVX2 get nothing loaded, exactly as before; <c>RLHF_MKL_INTEL_PATH=0</c> turns it off.
/// </summary>
public static class MklCodePath
{
    /// <summary>The switch: unset or <c>auto</c> (the default), <c>0</c> (off), <c>1</c> (on for any x86-64 CPU with
    /// AVX2), <c>non-intel</c> (diagnostic: oneMKL's non-Intel kernels).</summary>
    public const string EnvironmentVariable = "RLHF_MKL_INTEL_PATH";

    /// <summary>The oneMKL service function whose answer selects the kernels.</summary>
    public const string Symbol = "mkl_serv_intel_cpu_true";

    /// <summary>The interposer's DT_SONAME (and memfd name).</summary>
    public const string LibraryName = "librlhf-mkl-intel-path.so";

    static readonly object gate = new();
    static string? status;
    static MklCodePathKind active = MklCodePathKind.Default;

    /// <summary>The path in force after <see cref="Apply"/>.</summary>
    public static MklCodePathKind Active { get { Apply(); return active; } }

    /// <summary>One line for the run's log: which oneMKL path is active and why.</summary>
    public static string Status => Apply();

    /// <summary>
    /// Decides what to load: on (<see cref="MklCodePathKind.Intel"/>) by default only for an AMD CPU with AVX2.
    /// Pure, for tests: the process's values come from CPUID and the environment.
    /// </summary>
    /// <param name="setting">The value of <see cref="EnvironmentVariable"/>, or null.</param>
    /// <param name="vendor">CPUID leaf 0's vendor string ("AuthenticAMD", "GenuineIntel"), or null when not x86-64.</param>
    /// <param name="hasAvx2">CPUID leaf 7's AVX2 bit (with AVX and OSXSAVE).</param>
    public static MklCodePathDecision Decide(string? setting, string? vendor, bool hasAvx2)
    {
        string value = (setting ?? "").Trim().ToLowerInvariant();
        if (vendor is null) return new(MklCodePathKind.Default, "not an x86-64 CPU");
        switch (value)
        {
            case "0" or "off" or "false":
                return new(MklCodePathKind.Default, $"turned off by {EnvironmentVariable}={setting}");
            case "non-intel":
                return new(MklCodePathKind.NonIntel, $"{EnvironmentVariable}=non-intel (diagnostic: oneMKL treats this {vendor} CPU as non-Intel)");
            case "1" or "on" or "true":
                return hasAvx2
                    ? new(MklCodePathKind.Intel, $"forced by {EnvironmentVariable}={setting} on this {vendor} CPU")
                    : new(MklCodePathKind.Default, $"{EnvironmentVariable}={setting} ignored: this {vendor} CPU has no AVX2");
            case "" or "auto":
                if (vendor != "AuthenticAMD") return new(MklCodePathKind.Default, $"{vendor} CPU");
                return hasAvx2
                    ? new(MklCodePathKind.Intel, $"AMD CPU with AVX2; {EnvironmentVariable}=0 turns it off")
                    : new(MklCodePathKind.Default, "AMD CPU without AVX2");
            default:
                return new(MklCodePathKind.Default, $"{EnvironmentVariable}='{setting}' not understood (use auto, 0, 1 or non-intel)");
        }
    }

    /// <summary>
    /// Loads the interposer if <see cref="Decide"/> says so, once per process, and returns the log line. Must run
    /// before the first TorchSharp call: every entry point (CLI, bench, tests) calls it first, and this library's
    /// module initializer calls it when the library is first touched.
    /// </summary>
    public static string Apply()
    {
        if (status is not null) return status;
        lock (gate)
        {
            if (status is not null) return status;
            status = ApplyOnce();
            return status;
        }
    }

    static string ApplyOnce()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
            return "oneMKL path: default (not Linux x86-64)";
        var (vendor, avx2) = Cpu();
        var decision = Decide(Environment.GetEnvironmentVariable(EnvironmentVariable), vendor, avx2);
        if (decision.Kind == MklCodePathKind.Default) return $"oneMKL path: default ({decision.Reason})";
        // Interposing after libtorch_cpu.so is loaded would hold only if oneMKL had not yet asked: do not pretend.
        if (GlobalLibrary.IsLoaded("libtorch_cpu.so"))
            return $"oneMKL path: default (LibTorch was loaded before {nameof(MklCodePath)}.{nameof(Apply)}; wanted {decision.Kind}: {decision.Reason})";
        int value = decision.Kind == MklCodePathKind.Intel ? 1 : 0;
        string? error = GlobalLibrary.Load(InterposerElf.SharedObject(LibraryName, Symbol, value), LibraryName);
        if (error is not null) return $"oneMKL path: default (the interposer did not load: {error})";
        active = decision.Kind;
        return decision.Kind == MklCodePathKind.Intel
            ? $"oneMKL path: Intel kernels ({Symbol} interposed to return 1; {decision.Reason})"
            : $"oneMKL path: non-Intel kernels ({Symbol} interposed to return 0; {decision.Reason})";
    }

    /// <summary>Whether <see cref="Symbol"/> resolves in the global scope, i.e. the interposer is in force.</summary>
    public static bool Interposed => OperatingSystem.IsLinux() && GlobalLibrary.ResolvesGlobally(Symbol);

    /// <summary>CPUID: the vendor string (null when not x86) and AVX2 usable (AVX2 bit, AVX bit, OSXSAVE bit).</summary>
    static (string? Vendor, bool Avx2) Cpu()
    {
        if (!X86Base.IsSupported) return (null, false);
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        var bytes = new byte[12];
        BitConverter.TryWriteBytes(bytes.AsSpan(0), ebx);
        BitConverter.TryWriteBytes(bytes.AsSpan(4), edx);
        BitConverter.TryWriteBytes(bytes.AsSpan(8), ecx);
        string vendor = Encoding.ASCII.GetString(bytes);
        var (_, _, ecx1, _) = X86Base.CpuId(1, 0);
        bool osxsave = (ecx1 & (1 << 27)) != 0, avx = (ecx1 & (1 << 28)) != 0;
        var (_, ebx7, _, _) = X86Base.CpuId(7, 0);
        bool avx2 = (ebx7 & (1 << 5)) != 0;
        return (vendor, osxsave && avx && avx2);
    }

    /// <summary>Runs <see cref="Apply"/> as soon as this library is touched, before any of its code calls TorchSharp.</summary>
#pragma warning disable CA2255 // a library module initializer is the point: it must run before TorchSharp loads LibTorch
    [ModuleInitializer]
    internal static void OnLoad() => Apply();
#pragma warning restore CA2255
}
