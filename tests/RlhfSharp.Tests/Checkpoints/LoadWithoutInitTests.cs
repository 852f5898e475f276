using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Lora;
using RlhfSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Checkpoints;

/// <summary>
/// A checkpoint load builds its layers without random init (<see cref="LayerInit"/>, issue #20). What that could break,
/// checked against the route loads took before (a module built with its init, then every weight copied in): a weight left
/// uninitialised, a table the forward reads that is not the one the loader filled or LoRA froze, the global generator.
/// </summary>
[Collection(ProcessWideStateCollection.Name)] // reads torch's global generator
public sealed class LoadWithoutInitTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-noinit2-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "hf", name);

    /// <summary>
    /// Every tensor of a safetensors file as float32 (exact from F16/BF16), read here from the bytes and the JSON
    /// header alone: the file's values independent of the loader under test.
    /// </summary>
    static Dictionary<string, Tensor> ReadRaw(string path)
    {
        var bytes = File.ReadAllBytes(path);
        long headerLength = BitConverter.ToInt64(bytes, 0);
        var header = (JsonObject)JsonNode.Parse(System.Text.Encoding.UTF8.GetString(bytes, 8, (int)headerLength))!;
        long data = 8 + headerLength;
        var result = new Dictionary<string, Tensor>();
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__") continue;
            var shape = node!["shape"]!.AsArray().Select(s => s!.GetValue<long>()).ToArray();
            long begin = data + node["data_offsets"]![0]!.GetValue<long>();
            string dtype = node["dtype"]!.GetValue<string>();
            int width = dtype == "F32" ? 4 : 2;
            var values = new float[shape.Aggregate(1L, (a, b) => a * b)];
            for (int i = 0; i < values.Length; i++)
            {
                int at = (int)(begin + (long)i * width);
                values[i] = dtype switch
                {
                    "F32" => BitConverter.ToSingle(bytes, at),
                    "BF16" => BitConverter.Int32BitsToSingle(BitConverter.ToUInt16(bytes, at) << 16), // bf16 is float32's top half
                    "F16" => (float)BitConverter.ToHalf(bytes, at),
                    _ => throw new InvalidDataException($"{path}: dtype {dtype}"),
                };
            }
            result[name] = tensor(values, shape);
        }
        return result;
    }

    /// <summary>The fixture with its weights stored as <paramref name="stored"/>.</summary>
    string Stored(string fixture, ScalarType stored)
    {
        string source = Fixture(fixture), dir = Path.Combine(tmp, $"{fixture}-{stored}");
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(source, "config.json"), Path.Combine(dir, "config.json"));
        var weights = ReadRaw(Path.Combine(source, "model.safetensors"));
        SafeTensors.Save(Path.Combine(dir, "model.safetensors"), weights.OrderBy(kv => kv.Key, StringComparer.Ordinal), stored);
        return dir;
    }

    /// <summary>The file's weights in our names and layouts, by HfWeightMap's joining rules (not the loader's slices).</summary>
    static Dictionary<string, Tensor> FileWeights(string dir, nn.Module shapeOf, bool scoreHead)
    {
        var config = TransformerConfig.Load(Path.Combine(dir, "config.json"));
        var shapes = shapeOf.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        return HfWeightMap.ToOurs(config, ReadRaw(Path.Combine(dir, "model.safetensors")), scoreHead, dir, name => shapes[name]);
    }

    /// <summary>
    /// The route every load took before: the module built in its dtype with its random init (TorchSharp's constructors),
    /// then filled with the file's values (stored in that dtype or wider, so the copy rounds nothing).
    /// </summary>
    static T BuiltThenFilled<T>(T module, string dir, bool scoreHead) where T : nn.Module
    {
        var weights = FileWeights(dir, module, scoreHead);
        using (no_grad())
            foreach (var (name, p) in module.named_parameters()) p.copy_(weights[name]);
        module.eval();
        return module;
    }

    static byte[] GeneratorState()
    {
        using var state = torch.random.get_rng_state();
        return state.data<byte>().ToArray();
    }

    [Theory]
    [InlineData("llama_tiny_gqa", ScalarType.Float32)]
    [InlineData("llama_tiny_gqa", ScalarType.BFloat16)]
    [InlineData("llama_tiny_gqa", ScalarType.Float16)]
    [InlineData("gpt2_tiny", ScalarType.Float32)]   // Conv1D transposed, learned positions (a second embedding)
    [InlineData("gpt2_tiny", ScalarType.BFloat16)]
    [InlineData("qwen2_tiny_tied", ScalarType.Float16)] // tied head: the logits read the embedding table
    public void A_loaded_model_holds_the_files_values_bit_for_bit(string fixture, ScalarType dtype)
    {
        string dir = Stored(fixture, dtype);
        using var model = HuggingFaceCheckpoint.LoadCausalLM(dir, dtype);
        var want = FileWeights(dir, model, scoreHead: false);
        int compared = 0;
        foreach (var (name, p) in model.named_parameters())
        {
            Assert.Equal(dtype, p.dtype);
            // The stored value widened exactly to float32 and narrowed back is the stored value.
            Assert.True(want[name].to(dtype).eq(p).all().item<bool>(), $"{name} differs from the file");
            compared++;
        }
        Assert.Equal(want.Count, compared);
    }

    [Theory]
    [InlineData("llama_tiny_gqa", ScalarType.Float32)]
    [InlineData("gpt2_tiny", ScalarType.Float32)]
    [InlineData("qwen2_tiny_tied", ScalarType.Float32)]
    [InlineData("llama_tiny_gqa", ScalarType.BFloat16)]
    [InlineData("qwen2_tiny_tied", ScalarType.BFloat16)]
    [InlineData("gpt2_tiny", ScalarType.BFloat16)]
    public void A_loaded_model_generates_with_a_seed_the_tokens_the_initialised_route_does(string fixture, ScalarType dtype)
    {
        string dir = Stored(fixture, dtype);
        using var loaded = HuggingFaceCheckpoint.LoadCausalLM(dir, dtype);
        using var before = BuiltThenFilled(new CausalLM(loaded.Config, dtype), dir, scoreHead: false);
        using (no_grad())
        {
            using var ids = tensor(new long[] { 1, 5, 9, 17, 3, 11 }, [2, 3]);
            Assert.True(before.Forward(ids).eq(loaded.Forward(ids)).all().item<bool>(), "logits differ");
        }
        var options = new SamplingOptions { MaxNewTokens = 12, Seed = 7, StopAtEos = false };
        int[][] prompts = [[1, 5, 9], [1, 17]];
        var want = new Sampler(before) { PadId = 0 }.Generate(prompts, options);
        var got = new Sampler(loaded) { PadId = 0 }.Generate(prompts, options);
        for (int i = 0; i < prompts.Length; i++)
        {
            Assert.Equal(12, got[i].NewIds.Length);
            Assert.Equal(want[i].NewIds, got[i].NewIds);
            Assert.Equal(want[i].Logprobs, got[i].Logprobs);
        }
    }

    [Fact]
    public void A_loaded_reward_model_scores_as_the_initialised_route_does()
    {
        string dir = Fixture("llama_reward_tiny");
        using var loaded = HuggingFaceCheckpoint.LoadScoreModel(dir);
        using var before = BuiltThenFilled(new ScoreModel(loaded.Config), dir, scoreHead: true);
        using var _ = no_grad();
        using var ids = tensor(new long[] { 1, 5, 9, 17, 3, 11, 2, 8 }, [2, 4]);
        Assert.True(before.Rewards(ids).eq(loaded.Rewards(ids)).all().item<bool>());
    }

    [Fact]
    public void A_checkpoint_load_draws_nothing_from_the_global_generator()
    {
        torch.manual_seed(11);
        var seeded = GeneratorState();
        using (HuggingFaceCheckpoint.LoadCausalLM(Fixture("gpt2_tiny"))) { }
        using (HuggingFaceCheckpoint.LoadCausalLM(Fixture("qwen2_tiny_tied"), ScalarType.BFloat16)) { }
        using (HuggingFaceCheckpoint.LoadScoreModel(Fixture("llama_reward_tiny"))) { }
        Assert.Equal(seeded, GeneratorState());
        // A model built outside a load still draws its init, as it always did.
        using (new CausalLM(TransformerConfig.Load(Path.Combine(Fixture("gpt2_tiny"), "config.json")))) { }
        Assert.NotEqual(seeded, GeneratorState());
    }

    [Theory]
    [InlineData("qwen2_tiny_tied")] // the tied embedding is the head: it must stay frozen and unchanged
    [InlineData("gpt2_tiny")]
    public void LoRA_on_a_loaded_base_trains_the_adapters_and_leaves_the_base_untouched(string fixture)
    {
        string dir = Fixture(fixture);
        using var model = HuggingFaceCheckpoint.LoadCausalLM(dir);
        using var untouched = BuiltThenFilled(new CausalLM(model.Config), dir, scoreHead: false);
        torch.manual_seed(3);
        LoraModel.Attach(model, new LoraConfig { R = 4, Alpha = 8, Dropout = 0.0, TargetModules = ["all-linear"] });
        foreach (var (name, p) in model.named_parameters())
            Assert.True(p.requires_grad == name.Contains("_lora."), $"{name}: requires_grad {p.requires_grad}");

        var trainable = model.parameters().Where(p => p.requires_grad).ToList();
        using var optimizer = optim.AdamW(trainable, lr: 1e-2);
        using var ids = tensor(new long[] { 1, 5, 9, 17, 3, 11, 4, 8, 1, 7, 13, 2 }, [2, 6]);
        model.train();
        var losses = new List<double>();
        for (int step = 0; step < 8; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var logits = model.Forward(ids);
            long t = ids.shape[1] - 1; // next-token loss: position i predicts token i + 1
            var loss = nn.functional.cross_entropy(logits.narrow(1, 0, t).reshape(-1, logits.shape[^1]), ids.narrow(1, 1, t).reshape(-1));
            loss.backward();
            optimizer.step();
            losses.Add(loss.item<float>());
        }
        Assert.True(losses[^1] < losses[0] - 0.05, $"loss {losses[0]:F4} → {losses[^1]:F4}");

        var original = untouched.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        int compared = 0;
        foreach (var (name, p) in model.named_parameters().Where(p => !p.name.Contains("_lora.")))
        {
            Assert.True(p.eq(original[name]).all().item<bool>(), $"base weight {name} changed");
            compared++;
        }
        Assert.Equal(original.Count, compared);
    }
}
