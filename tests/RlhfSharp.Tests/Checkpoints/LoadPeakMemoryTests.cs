using System.Diagnostics;
using RlhfSharp.Checkpoints;
using RlhfSharp.Models;

namespace RlhfSharp.Tests.Checkpoints;

/// <summary>
/// Loading a model whose weights take N bytes raises the process's peak resident memory (VmHWM) by less than
/// 1.2 × N: measured in a child <c>rlhf chat</c> once it has loaded and waits for input, against the same command
/// on a tiny model of the same family (the runtime's own baseline).
/// </summary>
public sealed class LoadPeakMemoryTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-peak-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static TransformerConfig Shape(int vocab, int hidden, int layers, int inter, int heads, int kvHeads) => new()
    {
        ModelType = "qwen2", VocabSize = vocab, HiddenSize = hidden, IntermediateSize = inter, NumLayers = layers,
        NumHeads = heads, NumKvHeads = kvHeads, MaxPositions = 512, QkvBias = true, BosTokenId = 1, EosTokenIds = [2],
    };

    string Create(string name, TransformerConfig config)
    {
        string dir = Path.Combine(tmp, name);
        using var tokenizerSource = PretrainedModel.Load("stories260k"); // a real tokenizer (512 tokens) for chat
        using var model = new CausalLM(config);
        HuggingFaceCheckpoint.Save(model, dir, writeExtras: tokenizerSource.WriteTokenizerFiles);
        return dir;
    }

    /// <summary>VmHWM in bytes of <c>rlhf chat</c> on <paramref name="dir"/> once it prompts for input.</summary>
    static long PeakAfterLoad(string dir, string dtype)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "rlhf.dll"), "chat", "--model", dir, "--dtype", dtype, "--max-new-tokens", "1" })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        try
        {
            // The prompt "> " is written after the model and tokenizer are loaded, and chat then blocks on stdin:
            // VmHWM read now is the peak of loading, with no race against the process's exit.
            var seen = new System.Text.StringBuilder();
            while (!seen.ToString().EndsWith("> "))
            {
                int c = p.StandardOutput.Read();
                if (c < 0) throw new InvalidOperationException($"rlhf chat exited before prompting: {stderr.Result}");
                seen.Append((char)c);
            }
            var line = File.ReadLines($"/proc/{p.Id}/status").First(l => l.StartsWith("VmHWM:"));
            return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        finally
        {
            p.StandardInput.Close();
            if (!p.WaitForExit(60_000)) p.Kill(entireProcessTree: true);
        }
    }

    [Theory]
    [InlineData("float32", 4)]
    [InlineData("bf16", 2)]
    public void Loading_raises_the_peak_by_less_than_1_2_times_the_weights(string dtype, int bytesPerParameter)
    {
        var big = Shape(vocab: 16000, hidden: 768, layers: 8, inter: 2048, heads: 12, kvHeads: 4);
        string tiny = Create("tiny", Shape(vocab: 512, hidden: 64, layers: 8, inter: 128, heads: 4, kvHeads: 2));
        string model = Create("big", big);
        long weights = big.ParameterCount() * bytesPerParameter;
        long baseline = PeakAfterLoad(tiny, dtype);
        long peak = PeakAfterLoad(model, dtype);
        double ratio = (double)(peak - baseline) / weights;
        Assert.True(ratio < 1.2, $"loading {weights / 1e6:F0} MB of {dtype} weights raised the peak by {(peak - baseline) / 1e6:F0} MB ({ratio:F2}×)");
    }
}
