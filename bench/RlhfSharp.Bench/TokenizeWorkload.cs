using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using RlhfSharp.Tokenization;

namespace RlhfSharp.Bench;

/// <summary>
/// Issue #16 §1: every tokenizer encodes 1 MB of text in under 2 s on one core. Three texts per tokenizer: English
/// prose with code and numbers (many repeated words, the cache's case), one run of a single letter (one huge word,
/// the merge queue's case), and mixed scripts with emoji.
/// </summary>
public static class TokenizeWorkload
{
    public static void Run(Dictionary<string, object> result, int megabytes)
    {
        int chars = megabytes * 1_000_000;
        var texts = new Dictionary<string, string>
        {
            ["prose"] = Repeat("Once upon a time, Lily found 3 shiny shells by the sea. def f(x): return x ** 2  # square\n", chars),
            ["one-letter-run"] = new string('l', chars),
            ["mixed-scripts"] = Repeat("日本語のテキスト Ελληνικά русский 😀👍🏽 עברית 12345 ", chars),
        };
        var fixtures = Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..", "tests", "RlhfSharp.Tests", "fixtures", "tokenizers");
        var tokenizers = new Dictionary<string, Func<ITokenizer>>
        {
            ["llama2c-stories260k"] = () => Llama2cTokenizer.Load(Path.Combine(AppContext.BaseDirectory, "models", "stories260K", "tok512.bin")),
            ["gpt2-tokenizer.json"] = () => HfTokenizer.Load(Unpack(Path.Combine(fixtures, "gpt2"))),
            ["pythia-tokenizer.json"] = () => HfTokenizer.Load(Unpack(Path.Combine(fixtures, "pythia"))),
            ["pegasus-unigram-tokenizer.json"] = () => HfTokenizer.Load(Unpack(Path.Combine(fixtures, "pegasus"))),
        };
        // Wall seconds and the process's CPU seconds: on a loaded machine (load 50 on 2 cores here) the wall time
        // mostly measures waiting for a core; the CPU time is what one core spends encoding.
        var seconds = new Dictionary<string, double>();
        var cpuSeconds = new Dictionary<string, double>();
        foreach (var (name, load) in tokenizers)
        {
            var tokenizer = load();
            foreach (var (kind, text) in texts)
            {
                var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                var watch = Stopwatch.StartNew();
                int count = tokenizer.Encode(text).Length;
                seconds[$"{name}/{kind}"] = Math.Round(watch.Elapsed.TotalSeconds, 3);
                cpuSeconds[$"{name}/{kind}"] = Math.Round((Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds, 3);
                result[$"{name}/{kind}/tokens"] = count;
            }
        }
        result["megabytes"] = megabytes;
        result["seconds"] = seconds;
        result["cpu_seconds"] = cpuSeconds;
        result["max_seconds"] = seconds.Values.Max();
        result["max_cpu_seconds"] = cpuSeconds.Values.Max();
    }

    static string Repeat(string unit, int chars)
    {
        var sb = new StringBuilder(chars + unit.Length);
        while (sb.Length < chars) sb.Append(unit);
        return sb.ToString(0, chars);
    }

    /// <summary>The test fixtures keep tokenizer.json gzipped: unpack it into a temporary model folder.</summary>
    static string Unpack(string fixture)
    {
        var dir = Directory.CreateTempSubdirectory("rlhf-bench-tok-").FullName;
        using (var gz = new GZipStream(File.OpenRead(Path.Combine(fixture, "tokenizer.json.gz")), CompressionMode.Decompress))
        using (var output = File.Create(Path.Combine(dir, "tokenizer.json")))
            gz.CopyTo(output);
        File.Copy(Path.Combine(fixture, "tokenizer_config.json"), Path.Combine(dir, "tokenizer_config.json"));
        return dir;
    }
}
