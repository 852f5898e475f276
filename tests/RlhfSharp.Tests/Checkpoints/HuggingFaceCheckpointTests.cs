using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Checkpoints;

public sealed class HuggingFaceCheckpointTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-ckpt-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static Dictionary<string, float[]> Weights(nn.Module m) =>
        m.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().cpu().contiguous().data<float>().ToArray());

    [Theory]
    [InlineData("gpt2_tiny")]
    [InlineData("llama_tiny_gqa")]
    [InlineData("qwen2_tiny_tied")]
    [InlineData("llama_reward_tiny")]
    public void Save_then_load_is_bit_exact_and_writes_the_same_file_keys(string name)
    {
        var fx = new HfFixture(name);
        bool score = HuggingFaceCheckpoint.IsScoreModel(fx.Dir);
        using nn.Module a = score ? HuggingFaceCheckpoint.LoadScoreModel(fx.Dir) : HuggingFaceCheckpoint.LoadCausalLM(fx.Dir);
        string dir = Path.Combine(tmp, name);
        HuggingFaceCheckpoint.Save(a, dir);
        using nn.Module b = score ? HuggingFaceCheckpoint.LoadScoreModel(dir) : HuggingFaceCheckpoint.LoadCausalLM(dir);
        var wa = Weights(a); var wb = Weights(b);
        Assert.Equal(wa.Keys.OrderBy(k => k), wb.Keys.OrderBy(k => k));
        foreach (var k in wa.Keys) Assert.True(wa[k].AsSpan().SequenceEqual(wb[k]), k);

        // The file we wrote holds exactly HF's keys with HF's tensors, bit for bit.
        var original = SafeTensors.Load(Path.Combine(fx.Dir, "model.safetensors"));
        var written = SafeTensors.Load(Path.Combine(dir, "model.safetensors"));
        Assert.Equal(original.Keys.OrderBy(k => k, StringComparer.Ordinal), written.Keys.OrderBy(k => k, StringComparer.Ordinal));
        foreach (var k in original.Keys)
            Assert.True(original[k].data<float>().ToArray().AsSpan().SequenceEqual(written[k].data<float>().ToArray()), k);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!;
        Assert.Equal(JsonNode.Parse(File.ReadAllText(Path.Combine(fx.Dir, "config.json")))!["architectures"]!.ToJsonString(), config["architectures"]!.ToJsonString());
        Assert.DoesNotContain(Directory.GetDirectories(tmp), d => Path.GetFileName(d).StartsWith('.'));
    }

    [Fact]
    public void Sharded_checkpoints_round_trip_through_the_index()
    {
        var fx = new HfFixture("llama_tiny_gqa");
        using var a = HuggingFaceCheckpoint.LoadCausalLM(fx.Dir);
        string dir = Path.Combine(tmp, "sharded");
        HuggingFaceCheckpoint.Save(a, dir, maxShardBytes: 20_000);
        Assert.False(File.Exists(Path.Combine(dir, "model.safetensors")));
        var shards = Directory.GetFiles(dir, "model-*-of-*.safetensors");
        Assert.True(shards.Length > 2, $"expected several shards, got {shards.Length}");
        var map = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "model.safetensors.index.json")))!["weight_map"]!;
        Assert.Equal(shards.Select(Path.GetFileName).OrderBy(x => x), map.Select(kv => kv.Value!.GetValue<string>()).Distinct().OrderBy(x => x));
        using var b = HuggingFaceCheckpoint.LoadCausalLM(dir);
        var wa = Weights(a); var wb = Weights(b);
        foreach (var k in wa.Keys) Assert.True(wa[k].AsSpan().SequenceEqual(wb[k]), k);
    }

    [Fact]
    public void Bf16_and_f16_weights_load_as_their_float32_values()
    {
        var values = new float[] { 1f, -2.5f, 0.15625f, 3.140625f, -0.0078125f, 65504f };
        using var t = tensor(values, [2, 3]);
        string bfPath = Path.Combine(tmp, "bf16.safetensors");
        SafeTensors.Save(bfPath, [new("w", t)], bf16: true);
        Assert.Equal(values.Select(v => BitConverter.Int32BitsToSingle((int)(BitConverter.SingleToUInt32Bits(v) + 0x7FFF + ((BitConverter.SingleToUInt32Bits(v) >> 16) & 1)) & unchecked((int)0xFFFF0000))),
            SafeTensors.Load(bfPath)["w"].data<float>().ToArray());

        // F16 written by hand (we never write F16 ourselves): header + IEEE half data.
        var halves = values.Select(v => (Half)v).ToArray();
        var data = System.Runtime.InteropServices.MemoryMarshal.AsBytes(halves.AsSpan()).ToArray();
        var header = System.Text.Encoding.UTF8.GetBytes("{\"w\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0," + data.Length + "]}}");
        string f16Path = Path.Combine(tmp, "f16.safetensors");
        using (var f = File.Create(f16Path))
        {
            f.Write(BitConverter.GetBytes((ulong)header.Length)); f.Write(header); f.Write(data);
        }
        Assert.Equal(halves.Select(h => (float)h), SafeTensors.Load(f16Path)["w"].data<float>().ToArray());
    }

    [Fact]
    public void Tied_embedding_is_one_parameter_and_one_optimizer_step_moves_it_once()
    {
        var fx = new HfFixture("qwen2_tiny_tied");
        using var model = HuggingFaceCheckpoint.LoadCausalLM(fx.Dir);
        model.train();
        var names = model.named_parameters().Select(p => p.name).ToList();
        Assert.Contains("model.embed_tokens.weight", names);
        Assert.DoesNotContain(names, n => n.StartsWith("lm_head"));

        var embedding = model.model.Embeddings.weight!;
        var before = embedding.detach().clone();
        using var sgd = optim.SGD(model.parameters(), 0.1);
        var ids = tensor(new long[] { 5, 9, 13, 17, 21 }, [1, 5]);
        var logits = model.Forward(ids);
        var loss = nn.functional.cross_entropy(logits.narrow(1, 0, 4).reshape(-1, model.Config.VocabSize), ids.narrow(1, 1, 4).reshape(-1));
        loss.backward();
        var grad = embedding.grad!.clone();
        sgd.step();
        // Plain SGD moves a weight by exactly lr·grad when it is updated once (twice would double it).
        HfFixture.AssertClose(before - 0.1 * grad, embedding.detach(), null, "tied embedding after one SGD step", 1e-7, 1e-6);
    }

    [Fact]
    public void A_crash_while_saving_leaves_the_previous_checkpoint_intact()
    {
        var fx = new HfFixture("llama_tiny_gqa");
        using var model = HuggingFaceCheckpoint.LoadCausalLM(fx.Dir);
        string dir = Path.Combine(tmp, "intact");
        HuggingFaceCheckpoint.Save(model, dir);
        var before = File.ReadAllBytes(Path.Combine(dir, "model.safetensors"));
        Assert.Throws<IOException>(() => HuggingFaceCheckpoint.Save(model, dir, writeExtras: _ => throw new IOException("disk full")));
        Assert.Equal(before, File.ReadAllBytes(Path.Combine(dir, "model.safetensors")));
        Assert.Single(Directory.GetFileSystemEntries(tmp));
    }
}
