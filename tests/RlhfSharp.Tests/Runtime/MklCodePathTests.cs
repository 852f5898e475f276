using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using RlhfSharp.Runtime;

namespace RlhfSharp.Tests.Runtime;

/// <summary>
/// Issue #17: oneMKL's Intel kernels on AMD CPUs by an interposed <c>mkl_serv_intel_cpu_true</c>. The decision is
/// tested as a pure function; the effect in child processes (one per setting, since the choice is made once per
/// process before LibTorch loads), each writing the fixtures' logits and oneMKL's <c>MKL_VERBOSE</c> banner.
/// </summary>
public class MklCodePathTests : IClassFixture<MklCodePathTests.Children>
{
    readonly Children children;
    public MklCodePathTests(Children children) { this.children = children; }

    [Theory]
    [InlineData(null, "AuthenticAMD", true, MklCodePathKind.Intel)]
    [InlineData("auto", "AuthenticAMD", true, MklCodePathKind.Intel)]
    [InlineData(null, "AuthenticAMD", false, MklCodePathKind.Default)]
    [InlineData(null, "GenuineIntel", true, MklCodePathKind.Default)]
    [InlineData(null, "GenuineIntel", false, MklCodePathKind.Default)]
    [InlineData("0", "AuthenticAMD", true, MklCodePathKind.Default)]
    [InlineData("off", "AuthenticAMD", true, MklCodePathKind.Default)]
    [InlineData("1", "GenuineIntel", true, MklCodePathKind.Intel)]
    [InlineData("1", "AuthenticAMD", false, MklCodePathKind.Default)]
    [InlineData("non-intel", "GenuineIntel", true, MklCodePathKind.NonIntel)]
    [InlineData("yes please", "AuthenticAMD", true, MklCodePathKind.Default)]
    [InlineData(null, null, false, MklCodePathKind.Default)]
    public void Fast_path_is_the_default_only_on_amd_with_avx2_and_the_switch_decides(string? setting, string? vendor, bool avx2, MklCodePathKind expected)
    {
        var decision = MklCodePath.Decide(setting, vendor, avx2);
        Assert.Equal(expected, decision.Kind);
        if (setting == "yes please") Assert.Contains("not understood", decision.Reason);
    }

    [OneMklFact]
    public void Written_interposer_is_a_shared_object_the_dynamic_loader_accepts()
    {
        // Another symbol than oneMKL's and local scope, so this test host's own oneMKL path is untouched.
        byte[] elf = InterposerElf.SharedObject("librlhf-probe.so", "rlhf_probe_answer", 42);
        Assert.Equal(elf, InterposerElf.SharedObject("librlhf-probe.so", "rlhf_probe_answer", 42));
        string path = Path.Combine(Path.GetTempPath(), $"rlhf-probe-{Environment.ProcessId}.so");
        File.WriteAllBytes(path, elf);
        try
        {
            var handle = NativeLibrary.Load(path);
            var answer = Marshal.GetDelegateForFunctionPointer<IntFunction>(NativeLibrary.GetExport(handle, "rlhf_probe_answer"));
            Assert.Equal(42, answer());
        }
        finally { File.Delete(path); }
    }

    delegate int IntFunction();

    [SkippableFact]
    public void Fast_path_reaches_onemkl_inside_libtorch_and_agrees_with_the_default_path_within_float32_tolerance()
    {
        Skip.IfNot(OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64, "oneMKL interposition: x86-64 Linux only");
        Skip.IfNot(System.Runtime.Intrinsics.X86.Avx2.IsSupported, "oneMKL interposition: the CPU has no AVX2");
        var on = children.On;
        var nonIntel = children.NonIntel;
        Assert.True(on.Interposed, on.Status);
        Assert.Equal("Intel", on.Active);
        Assert.Equal("NonIntel", nonIntel.Active);
        // oneMKL names the kernels it chose: a different banner proves the interposed answer reached it. Some CPUs get
        // the same kernels either way (a first-generation EPYC, family 23 model 1: "Intel(R) Architecture processors"
        // for both answers), and there the banner cannot tell.
        Assert.NotNull(on.Banner);
        Skip.If(on.Banner == nonIntel.Banner,
            $"oneMKL chose the same kernels for both vendor answers on this CPU ({on.Banner}): the banner cannot show the interposed answer reaching it");
        Assert.Equal(on.Outputs.Keys.Order(), nonIntel.Outputs.Keys.Order());
        Assert.True(on.Outputs.Count >= 5);
        foreach (var (name, expected) in nonIntel.Outputs)
        {
            var actual = on.Outputs[name];
            Assert.Equal(expected.Length, actual.Length);
            // float32 tolerance: a different summation order of K products, each error ~ε·|a||b|.
            double atol = name == "matmul384" ? 1e-3 : 1e-5, rtol = 1e-4;
            for (int i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(actual[i] - expected[i]) <= atol + rtol * Math.Abs(expected[i]),
                    $"{name}[{i}]: Intel path {actual[i]} vs non-Intel path {expected[i]}");
        }
    }

    [OneMklFact]
    public void Switch_off_loads_nothing_and_leaves_onemkl_to_its_own_choice()
    {
        var off = children.Off;
        Assert.False(off.Interposed, off.Status);
        Assert.Equal("Default", off.Active);
        Assert.StartsWith("oneMKL path: default (turned off by RLHF_MKL_INTEL_PATH=0)", off.Status);
        // Off, oneMKL asks the CPU itself: Intel kernels on an Intel CPU, the non-Intel ones elsewhere.
        Assert.Equal(Children.Vendor == "GenuineIntel" ? children.On.Banner : children.NonIntel.Banner, off.Banner);
    }

    [Fact]
    public void Cli_run_log_names_the_onemkl_path()
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "rlhf.dll"));
        foreach (var a in new[] { "generate", "--prompt-ids", "1,2,3", "--max-new-tokens", "2" }) psi.ArgumentList.Add(a);
        string Run(string? setting)
        {
            psi.Environment[MklCodePath.EnvironmentVariable] = setting;
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            string stderr = p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, stderr + stdout.Result);
            return stderr;
        }
        string off = Run("0");
        Assert.Single(off.Split('\n'), l => l.StartsWith("oneMKL path: default (turned off by RLHF_MKL_INTEL_PATH=0)"));
        string auto = Run(null);
        Assert.Single(auto.Split('\n'), l => l.StartsWith("oneMKL path: "));
    }

    public sealed record Probe(string Status, string Active, bool Interposed, string? Banner, Dictionary<string, float[]> Outputs);

    /// <summary>Three child processes, once per test class: RLHF_MKL_INTEL_PATH = 0, 1 and non-intel.</summary>
    /// <remarks>Started on first use, so a skipped test (no AVX2, not x86-64 Linux) starts none.</remarks>
    public sealed class Children
    {
        readonly Lazy<Probe> off = new(() => Run("0")), on = new(() => Run("1")), nonIntel = new(() => Run("non-intel"));
        public Probe Off => off.Value;
        public Probe On => on.Value;
        public Probe NonIntel => nonIntel.Value;
        public static string Vendor =>
            File.ReadLines("/proc/cpuinfo").First(l => l.StartsWith("vendor_id")).Split(':', 2)[1].Trim();

        static Probe Run(string setting)
        {
            string output = Path.Combine(Path.GetTempPath(), $"rlhf-mkl-probe-{Environment.ProcessId}-{setting}.json");
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "RlhfSharp.Tests.dll"), "mkl-probe", output }) psi.ArgumentList.Add(a);
            psi.Environment[MklCodePath.EnvironmentVariable] = setting;
            psi.Environment["MKL_VERBOSE"] = "1";
            psi.Environment["OMP_NUM_THREADS"] = "1";
            using var p = Process.Start(psi)!;
            var stderr = p.StandardError.ReadToEndAsync();
            string stdout = p.StandardOutput.ReadToEnd();
            if (!p.WaitForExit(300_000)) { p.Kill(entireProcessTree: true); throw new TimeoutException("mkl-probe " + setting); }
            Assert.True(p.ExitCode == 0, $"mkl-probe {setting}: {stderr.Result}");
            using var json = JsonDocument.Parse(File.ReadAllText(output));
            File.Delete(output);
            var root = json.RootElement;
            string? banner = stdout.Split('\n').FirstOrDefault(l => l.StartsWith("MKL_VERBOSE oneMKL"))?.Trim();
            var outputs = root.GetProperty("outputs").EnumerateObject()
                .ToDictionary(o => o.Name, o => o.Value.EnumerateArray().Select(v => v.GetSingle()).ToArray());
            return new Probe(root.GetProperty("status").GetString()!, root.GetProperty("active").GetString()!,
                root.GetProperty("interposed").GetBoolean(), banner, outputs);
        }
    }
}
