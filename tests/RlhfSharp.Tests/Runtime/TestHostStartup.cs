using System.Runtime.CompilerServices;
using RlhfSharp.Runtime;

namespace RlhfSharp.Tests.Runtime;

/// <summary>
/// The test host's entry point into native code: the oneMKL path is chosen before any test touches TorchSharp, as
/// the CLI and the benchmark do (some tests call TorchSharp without touching the library first).
/// </summary>
static class TestHostStartup
{
#pragma warning disable CA2255 // runs before any test of this assembly, which is the point
    [ModuleInitializer]
    internal static void Init() => MklCodePath.Apply();
#pragma warning restore CA2255
}
