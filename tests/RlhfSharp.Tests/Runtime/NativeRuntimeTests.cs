using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Runtime;

public class NativeRuntimeTests
{
    [Fact]
    public void TorchSharp_loads_and_computes()
    {
        using var x = arange(1, 5, dtype: float32);
        Assert.Equal(10f, x.sum().item<float>());
    }

    [Fact]
    public void Copied_native_library_needs_glibcxx_3_4_32_only_weakly_when_the_system_lacks_it()
    {
        string lib = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(lib), lib);
        byte[] bytes = File.ReadAllBytes(lib);
        // Run the patch again on a copy: it must find nothing left to weaken (the build already did it)
        // exactly when the system lacks the version.
        bool systemHasIt = File.Exists("/usr/lib/x86_64-linux-gnu/libstdc++.so.6")
            && System.Text.Encoding.ASCII.GetString(File.ReadAllBytes("/usr/lib/x86_64-linux-gnu/libstdc++.so.6")).Contains("GLIBCXX_3.4.32\0");
        int stillStrong = WeakenGlibcxxNeed.Weaken((byte[])bytes.Clone(), "GLIBCXX_3.4.32");
        Assert.Equal(systemHasIt ? 1 : 0, stillStrong);
    }
}
