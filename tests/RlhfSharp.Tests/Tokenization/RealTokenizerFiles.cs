using System.IO.Compression;
using System.Text.Json.Nodes;

namespace RlhfSharp.Tests.Tokenization;

/// <summary>
/// The real GPT-2 and Pythia tokenizer files in fixtures/tokenizers (gzipped; see SOURCE.md there), unpacked into a
/// temporary model folder, optionally patched the way fixtures/tokenizers/tokenizersjs/expected.mjs patches them.
/// </summary>
internal sealed class RealTokenizerFiles : IDisposable
{
    private readonly TempDir _dir = new();

    public static string FixtureDir => Path.Combine(AppContext.BaseDirectory, "fixtures", "tokenizers");

    /// <summary>Writes the folder for <paramref name="baseName"/> ("gpt2" or "pythia") with <paramref name="patch"/> applied.</summary>
    public string Folder(string baseName, JsonObject? patch = null)
    {
        var dir = Path.Combine(_dir.Path, baseName + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        using (var gz = new GZipStream(File.OpenRead(Path.Combine(FixtureDir, baseName, "tokenizer.json.gz")), CompressionMode.Decompress))
        using (var reader = new StreamReader(gz))
        {
            var json = JsonNode.Parse(reader.ReadToEnd())!.AsObject();
            if (patch?["normalizer"] is JsonNode normalizer) json["normalizer"] = normalizer.DeepClone();
            if (patch?["pre_tokenizer"] is JsonNode pre) json["pre_tokenizer"] = pre.DeepClone();
            if (patch?["extra_added_tokens"] is JsonArray extra)
                foreach (var token in extra) json["added_tokens"]!.AsArray().Add(token!.DeepClone());
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), json.ToJsonString());
        }
        File.Copy(Path.Combine(FixtureDir, baseName, "tokenizer_config.json"), Path.Combine(dir, "tokenizer_config.json"));
        return dir;
    }

    public void Dispose() => _dir.Dispose();
}
