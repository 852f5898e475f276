using RlhfSharp.Checkpoints;

namespace RlhfSharp.Tests.Checkpoints;

/// <summary>Broken checkpoints end in an <see cref="RlhfException"/> that names the file and key.</summary>
public sealed class BadCheckpointTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-bad-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    string CopyFixture(string name)
    {
        string dir = Path.Combine(tmp, name);
        Directory.CreateDirectory(dir);
        foreach (var f in Directory.GetFiles(new HfFixture(name).Dir)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        return dir;
    }

    [Fact]
    public void Missing_folder_names_the_path()
    {
        var e = Assert.Throws<RlhfException>(() => HuggingFaceCheckpoint.LoadCausalLM(Path.Combine(tmp, "nope")));
        Assert.Contains("nope", e.Message);
    }

    [Fact]
    public void Unknown_model_type_names_the_key_and_value()
    {
        string dir = CopyFixture("llama_tiny_gqa");
        string cfg = Path.Combine(dir, "config.json");
        File.WriteAllText(cfg, File.ReadAllText(cfg).Replace("\"model_type\": \"llama\"", "\"model_type\": \"mamba\""));
        var e = Assert.Throws<RlhfException>(() => HuggingFaceCheckpoint.LoadCausalLM(dir));
        Assert.Contains("config.json", e.Message);
        Assert.Contains("mamba", e.Message);
    }

    [Fact]
    public void Shape_mismatch_names_the_weight_and_both_shapes()
    {
        string dir = CopyFixture("llama_tiny_gqa");
        string cfg = Path.Combine(dir, "config.json");
        File.WriteAllText(cfg, File.ReadAllText(cfg).Replace("\"intermediate_size\": 64", "\"intermediate_size\": 48"));
        var e = Assert.Throws<RlhfException>(() => HuggingFaceCheckpoint.LoadCausalLM(dir));
        Assert.Contains("mlp.gate_proj.weight", e.Message);
        Assert.Contains("64x32", e.Message);
    }

    [Fact]
    public void Unsupported_dtype_names_the_tensor()
    {
        string path = Path.Combine(tmp, "i64.safetensors");
        var header = System.Text.Encoding.UTF8.GetBytes("{\"w\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}");
        using (var f = File.Create(path)) { f.Write(BitConverter.GetBytes((ulong)header.Length)); f.Write(header); f.Write(new byte[8]); }
        var e = Assert.Throws<RlhfException>(() => SafeTensors.Load(path));
        Assert.Contains("'w'", e.Message);
        Assert.Contains("I64", e.Message);
    }

    [Fact]
    public void Truncated_weights_file_is_an_error_not_garbage()
    {
        string dir = CopyFixture("gpt2_tiny");
        string w = Path.Combine(dir, "model.safetensors");
        var bytes = File.ReadAllBytes(w);
        File.WriteAllBytes(w, bytes[..(bytes.Length - 100)]);
        var e = Assert.Throws<RlhfException>(() => HuggingFaceCheckpoint.LoadCausalLM(dir));
        Assert.Contains("model.safetensors", e.Message);
    }

    [Fact]
    public void Truncated_llama2c_checkpoint_says_so()
    {
        string path = Path.Combine(tmp, "cut.bin");
        var bytes = File.ReadAllBytes(HfFixture.BuiltInModel);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<RlhfException>(() => Llama2cCheckpoint.LoadCausalLM(path));
        Assert.Contains("cut.bin", e.Message);
        Assert.Contains("truncated", e.Message);
    }
}
