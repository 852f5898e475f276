using System.Text.Json;
using RlhfSharp.Checkpoints;
using RlhfSharp.Runtime;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Runtime;

/// <summary>
/// The test assembly's entry point, used as a child process by <see cref="MklCodePathTests"/>: each child starts with
/// its own <c>RLHF_MKL_INTEL_PATH</c>, so each gets the oneMKL path of a fresh process (the choice is made once, before
/// LibTorch loads). <c>dotnet RlhfSharp.Tests.dll mkl-probe out.json</c> writes the log line, whether the interposer
/// is in the global scope, the logits of every causal-LM fixture and the reward fixture's scores, and a 384³ matmul;
/// oneMKL's own <c>MKL_VERBOSE</c> banner goes to stdout.
/// </summary>
public static class MklProbe
{
    public static readonly string[] CausalFixtures = ["gpt2_tiny", "llama_tiny_gqa", "qwen2_tiny_tied"];

    public static int Main(string[] args)
    {
        if (args.Length != 2 || args[0] != "mkl-probe") return 0;
        var outputs = new Dictionary<string, float[]>();
        using (no_grad())
        {
            foreach (var name in CausalFixtures)
            {
                var fx = new HfFixture(name);
                using var model = HuggingFaceCheckpoint.LoadCausalLM(fx.Dir);
                foreach (var c in fx.Cases("forward"))
                {
                    using var scope = NewDisposeScope();
                    var logits = model.Forward(HfFixture.Ints(c["input_ids"])!, HfFixture.Ints(c["attention_mask"]), HfFixture.Ints(c["position_ids"]));
                    outputs[$"{name}/{c["name"]}"] = logits.contiguous().data<float>().ToArray();
                }
            }
            var reward = new HfFixture("llama_reward_tiny");
            using (var rm = HuggingFaceCheckpoint.LoadScoreModel(reward.Dir))
            {
                foreach (var c in reward.Cases("forward"))
                {
                    using var scope = NewDisposeScope();
                    var scores = rm.Forward(HfFixture.Ints(c["input_ids"])!, HfFixture.Ints(c["attention_mask"]));
                    outputs[$"llama_reward_tiny/{c["name"]}"] = scores.contiguous().data<float>().ToArray();
                }
            }
            // A product big enough that LibTorch hands it to oneMKL's sgemm whatever its small-size paths do.
            using var generator = new Generator(7);
            using var a = randn([384, 384], generator: generator);
            using var b = randn([384, 384], generator: generator);
            using var product = a.matmul(b);
            outputs["matmul384"] = product.data<float>().ToArray();
        }
        var report = new Dictionary<string, object>
        {
            ["status"] = MklCodePath.Status,
            ["active"] = MklCodePath.Active.ToString(),
            ["interposed"] = MklCodePath.Interposed,
            ["outputs"] = outputs,
        };
        File.WriteAllText(args[1], JsonSerializer.Serialize(report));
        return 0;
    }
}
