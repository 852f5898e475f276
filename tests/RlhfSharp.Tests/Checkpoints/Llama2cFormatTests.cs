using RlhfSharp.Checkpoints;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Checkpoints;

public sealed class Llama2cFormatTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-l2c-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    /// <summary>
    /// llama2.c's version-1 export (export.py <c>version1_export</c>): 256-byte header with magic "ak42", version 1,
    /// the 7 ints and a shared-classifier byte; then all norms first, then embeddings and the matrices.
    /// Rewriting stories260K's legacy file into that layout must give the same model.
    /// </summary>
    [Fact]
    public void Version1_export_loads_to_the_same_weights_as_the_legacy_file()
    {
        var legacy = File.ReadAllBytes(HfFixture.BuiltInModel);
        var header = new int[7];
        Buffer.BlockCopy(legacy, 0, header, 0, 28);
        int dim = header[0], hidden = header[1], layers = header[2], heads = header[3], kv = header[4], vocab = header[5], seq = header[6];
        int kvDim = kv * dim / heads;
        var floats = new float[(legacy.Length - 28) / 4];
        Buffer.BlockCopy(legacy, 28, floats, 0, floats.Length * 4);
        int at = 0;
        float[] Take(int n) { var x = floats.AsSpan(at, n).ToArray(); at += n; return x; }
        var emb = Take(vocab * dim); var rmsAtt = Take(layers * dim);
        var wq = Take(layers * dim * dim); var wk = Take(layers * kvDim * dim); var wv = Take(layers * kvDim * dim); var wo = Take(layers * dim * dim);
        var rmsFfn = Take(layers * dim); var w1 = Take(layers * hidden * dim); var w2 = Take(layers * dim * hidden); var w3 = Take(layers * hidden * dim);
        var rmsFinal = Take(dim);

        using var stream = new MemoryStream();
        using (var w = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            w.Write(0x616b3432u); w.Write(1);
            foreach (var h in header) w.Write(h);
            w.Write((byte)1);
            while (stream.Length < 256) w.Write((byte)0);
            foreach (var part in new[] { rmsAtt, rmsFfn, rmsFinal, emb, wq, wk, wv, wo, w1, w2, w3 })
                foreach (var f in part) w.Write(f);
        }
        string v1 = Path.Combine(tmp, "stories260K-v1.bin");
        File.WriteAllBytes(v1, stream.ToArray());

        using var a = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        using var b = Llama2cCheckpoint.LoadCausalLM(v1);
        var pb = b.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in a.named_parameters())
            Assert.True(p.eq(pb[name]).all().item<bool>(), name);
    }
}
