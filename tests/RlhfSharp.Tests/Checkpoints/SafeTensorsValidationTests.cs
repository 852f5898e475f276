using System.Text;
using RlhfSharp.Checkpoints;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Checkpoints;

/// <summary>
/// Safetensors files are checked against the format's rules (huggingface/safetensors <c>Metadata::validate</c>) before
/// any weight is trusted: each broken layout is refused with the file and the tensor named, never read as garbage.
/// </summary>
public sealed class SafeTensorsValidationTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-st-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    string Write(string header, int dataBytes, string name = "w.safetensors") => WriteBytes(Encoding.UTF8.GetBytes(header), dataBytes, name);

    string WriteBytes(byte[] header, int dataBytes, string name = "w.safetensors")
    {
        string path = Path.Combine(tmp, name);
        using var f = File.Create(path);
        f.Write(BitConverter.GetBytes((ulong)header.Length));
        f.Write(header);
        var data = new byte[dataBytes];
        for (int i = 0; i < dataBytes; i += 4) BitConverter.GetBytes(1.0f + i).CopyTo(data, i); // finite floats
        f.Write(data);
        return path;
    }

    static RlhfException Refused(string path) => Assert.Throws<RlhfException>(() => SafeTensors.Load(path));

    [Fact]
    public void Overlapping_offsets_are_refused_naming_the_tensor()
    {
        var e = Refused(Write("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12));
        Assert.Contains("w.safetensors", e.Message);
        Assert.Contains("'b'", e.Message);
        Assert.Contains("overlap", e.Message);
    }

    [Fact]
    public void A_hole_between_tensors_is_refused()
    {
        var e = Refused(Write("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20));
        Assert.Contains("'b'", e.Message);
        Assert.Contains("hole", e.Message);
    }

    [Fact]
    public void Data_no_tensor_covers_is_refused()
    {
        var e = Refused(Write("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16));
        Assert.Contains("8 bytes after its last tensor", e.Message);
    }

    [Fact]
    public void Offsets_that_do_not_match_dtype_times_shape_are_refused()
    {
        var e = Refused(Write("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8));
        Assert.Contains("'a'", e.Message);
        Assert.Contains("needs 12 bytes", e.Message);
    }

    [Fact]
    public void Offsets_past_the_end_of_the_file_are_refused_as_truncated()
    {
        var e = Refused(Write("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8));
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void Tensors_listed_out_of_order_but_tiling_the_data_are_valid()
    {
        // The spec orders nothing in the JSON; only the byte ranges must tile the data.
        var path = Write("{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16);
        var w = SafeTensors.Load(path);
        Assert.Equal(new[] { 1f, 5f }, w["a"].data<float>().ToArray());
        Assert.Equal(new[] { 9f, 13f }, w["b"].data<float>().ToArray());
    }

    [Fact]
    public void Duplicate_names_are_refused()
    {
        var e = Refused(Write("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8));
        Assert.Contains("'a' appears twice", e.Message);
    }

    [Fact]
    public void A_header_that_is_not_utf8_is_refused()
    {
        var header = Encoding.UTF8.GetBytes("{\"a#\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}");
        header[Array.IndexOf(header, (byte)'#')] = 0xFF;
        var e = Refused(WriteBytes(header, 4));
        Assert.Contains("UTF-8", e.Message);
    }

    [Fact]
    public void A_header_over_the_size_cap_is_refused_before_it_is_read()
    {
        string path = Path.Combine(tmp, "big.safetensors");
        using (var f = File.Create(path)) { f.Write(BitConverter.GetBytes((ulong)SafeTensorsHeader.MaxHeaderBytes + 1)); f.Write(Encoding.UTF8.GetBytes("{}")); }
        var e = Refused(path);
        Assert.Contains("limit", e.Message);
    }

    [Theory]
    [InlineData("{\"a\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,4]}}", "dtype 5")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", "expected 2 integers")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",\"4\"]}}", "non-negative integer")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", "non-negative integer")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", "non-negative integer")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}", "not an array")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-8,-4]}}", "non-negative integer")]
    [InlineData("{\"a\":[1,2]}", "not an object")]
    [InlineData("{\"__metadata__\":{\"format\":1},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "__metadata__")]
    [InlineData("[{\"a\":1}]", "start with")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999,99999999999],\"data_offsets\":[0,4]}}", "too large")]
    public void Garbage_header_fields_are_refused_with_a_message(string header, string expected)
    {
        var e = Refused(Write(header, 4));
        Assert.Contains("w.safetensors", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void NaN_or_infinite_weights_are_refused_naming_the_tensor()
    {
        string path = Path.Combine(tmp, "nan.safetensors");
        using (var good = tensor(new float[] { 1, 2 })) using (var bad = tensor(new float[] { 1, float.NaN }))
            SafeTensors.Save(path, [new("fine", good), new("model.layers.0.mlp.up_proj.weight", bad)]);
        var e = Refused(path);
        Assert.Contains("'model.layers.0.mlp.up_proj.weight'", e.Message);
        Assert.Contains("NaN", e.Message);
    }

    [Fact]
    public void A_model_whose_offsets_point_into_another_tensor_does_not_load()
    {
        // The case: offsets rewritten so a weight reads another's bytes; it used to load and train on garbage.
        string dir = Path.Combine(tmp, "model");
        Directory.CreateDirectory(dir);
        var fx = new HfFixture("llama_tiny_gqa");
        foreach (var f in Directory.GetFiles(fx.Dir)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        string w = Path.Combine(dir, "model.safetensors");
        var bytes = File.ReadAllBytes(w);
        long len = BitConverter.ToInt64(bytes, 0);
        var header = System.Text.Json.Nodes.JsonNode.Parse(Encoding.UTF8.GetString(bytes, 8, (int)len))!.AsObject();
        var norm = header["model.norm.weight"]!["data_offsets"]!.AsArray();
        long size = norm[1]!.GetValue<long>() - norm[0]!.GetValue<long>();
        header["model.norm.weight"]!["data_offsets"] = new System.Text.Json.Nodes.JsonArray(0L, size);
        var newHeader = Encoding.UTF8.GetBytes(header.ToJsonString());
        using (var f = File.Create(w)) { f.Write(BitConverter.GetBytes((ulong)newHeader.Length)); f.Write(newHeader); f.Write(bytes.AsSpan((int)(8 + len))); }
        var e = Assert.Throws<RlhfException>(() => HuggingFaceCheckpoint.LoadCausalLM(dir));
        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains("overlap", e.Message);
    }
}
