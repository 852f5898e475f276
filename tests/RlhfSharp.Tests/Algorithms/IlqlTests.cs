using RlhfSharp.Algorithms.Ilql;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using RlhfSharp.Training;
using TorchSharp;
using static TorchSharp.torch;
using static RlhfSharp.Tests.Algorithms.PinnedIlqlTests;

namespace RlhfSharp.Tests.Algorithms;

/// <summary>ILQL on the real stories260K model: decoding with the heads, their file beside the model, training, and its data.</summary>
public sealed class IlqlTests : IDisposable
{
    static CausalLM Stories() => Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
    static readonly int[] Prompt = [1, 403, 407];
    readonly string dir = Path.Combine(Path.GetTempPath(), "ilql-tests-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }

    /// <summary>Heads whose targets say <paramref name="q"/> for token <paramref name="k"/> and 0 elsewhere, and V = 0, in every state.</summary>
    internal static IlqlHeads AdvantageOn(int k, double q)
    {
        var heads = new IlqlHeads(64, 512);
        using var _ = no_grad();
        foreach (var head in heads.target_q_heads)
        {
            Named(head, "2.weight").zero_();
            var bias = new float[512];
            bias[k] = (float)q;
            Named(head, "2.bias").copy_(tensor(bias));
        }
        Named(heads.v_head, "2.weight").zero_();
        Named(heads.v_head, "2.bias").zero_();
        return heads;
    }

    [Fact]
    public void Greedy_token_changes_exactly_where_beta_times_advantage_overtakes_the_log_prob_gap()
    {
        using var policy = Stories();
        var sampler = new Sampler(policy) { PadId = 0, EosIds = [2] };
        var greedy = new SamplingOptions { Temperature = 0, MaxNewTokens = 1 };
        int First() => sampler.Generate([Prompt], greedy)[0].NewIds[0];

        float[] lp;
        using (no_grad()) lp = policy.Forward(tensor(Prompt.Select(x => (long)x).ToArray(), [1, Prompt.Length]), lastOnly: true).log_softmax(-1).data<float>().ToArray();
        int a = Array.IndexOf(lp, lp.Max());
        int k = Enumerable.Range(0, lp.Length).OrderByDescending(i => lp[i]).ElementAt(4); // the fifth most likely token
        double gap = lp[a] - lp[k];
        Assert.Equal(a, First());

        foreach (double beta in new[] { 1.0, 2.5 })
        {
            using var below = AdvantageOn(k, (gap - 0.01) / beta);
            policy.Ilql = new IlqlDecoding(below, beta);
            Assert.Equal(a, First());
            using var above = AdvantageOn(k, (gap + 0.01) / beta);
            policy.Ilql = new IlqlDecoding(above, beta);
            Assert.Equal(k, First());
            policy.Ilql = new IlqlDecoding(above, 0); // β = 0: the language model alone
            Assert.Equal(a, First());
        }
    }

    [Fact]
    public void Heads_saved_beside_the_model_load_back_identically_and_decode_the_same()
    {
        using var base_ = PretrainedModel.Load("stories260k");
        torch.manual_seed(3);
        var heads = new IlqlHeads(64, 512); // disposed with base_, whose decoding it becomes below
        heads.SyncTargets(0.5); // targets differ from their fresh copies only once trained: make them so
        using (no_grad()) foreach (var p in heads.Trainable) p.add_(randn_like(p) * 0.1);
        HuggingFaceCheckpoint.Save(base_.Model, dir, writeExtras: d => { base_.WriteTokenizerFiles(d); IlqlHeadsFile.Save(heads, d, alpha: 0.001, beta: 1.5); });

        using var loaded = PretrainedModel.Load(dir);
        var ilql = Assert.IsType<IlqlDecoding>(loaded.Model.Ilql);
        Assert.Equal(1.5, ilql.Beta);
        var saved = heads.named_parameters().ToDictionary(p => p.name, p => p.parameter.data<float>().ToArray());
        var back = ilql.Heads.named_parameters().ToDictionary(p => p.name, p => p.parameter.data<float>().ToArray());
        Assert.Equal(saved.Keys.Order(), back.Keys.Order());
        foreach (var (name, values) in saved) Assert.Equal(values, back[name]);

        // trlX's state-dict keys, and nothing of the heads inside the model's own weights.
        var keys = SafeTensors.Load(Path.Combine(dir, IlqlHeadsFile.WeightsFile)).Keys.ToHashSet();
        Assert.Contains("ilql_heads.v_head.0.weight", keys);
        Assert.Contains("ilql_heads.q_heads.1.2.bias", keys);
        Assert.Contains("ilql_heads.target_q_heads.0.0.weight", keys);
        Assert.Equal(20, keys.Count); // V, two Q and two targets: four tensors each
        Assert.DoesNotContain(SafeTensors.Load(Path.Combine(dir, "model.safetensors")).Keys, k => k.Contains("ilql"));

        base_.Model.Ilql = new IlqlDecoding(heads, 1.5);
        using var _ = no_grad();
        var ids = tensor(Prompt.Select(x => (long)x).ToArray(), [1, Prompt.Length]);
        var expected = base_.Model.Forward(ids);
        var raw = loaded.Model.Ilql;
        loaded.Model.Ilql = null;
        var lmOnly = loaded.Model.Forward(ids);
        loaded.Model.Ilql = raw;
        var actual = loaded.Model.Forward(ids);
        Assert.True(actual.allclose(expected, rtol: 0, atol: 1e-5), "the loaded heads decode differently");
        Assert.False(actual.allclose(lmOnly.log_softmax(-1), rtol: 0, atol: 1e-3), "the heads changed nothing");
    }

    [Fact]
    public void Rlhf_generate_decodes_with_the_heads_in_the_model_folder_and_ilql_beta_zero_turns_them_off()
    {
        using var base_ = PretrainedModel.Load("stories260k");
        float[] lp;
        using (no_grad()) lp = base_.Model.Forward(tensor(Prompt.Select(x => (long)x).ToArray(), [1, Prompt.Length]), lastOnly: true).log_softmax(-1).data<float>().ToArray();
        int a = Array.IndexOf(lp, lp.Max());
        int k = Enumerable.Range(0, lp.Length).OrderByDescending(i => lp[i]).ElementAt(4);
        using (var heads = AdvantageOn(k, lp[a] - lp[k] + 0.05))
            HuggingFaceCheckpoint.Save(base_.Model, dir, writeExtras: d => { base_.WriteTokenizerFiles(d); IlqlHeadsFile.Save(heads, d, 0.001, 1.0); });

        int FirstToken(params string[] extra)
        {
            var r = Cli.RlhfProcess.Run(["generate", "--model", dir, "--prompt-ids", string.Join(",", Prompt), "--temperature", "0", "--max-new-tokens", "1", "--json", .. extra]);
            Assert.True(r.ExitCode == 0, r.Stderr);
            return System.Text.Json.Nodes.JsonNode.Parse(r.Stdout.Trim())!["new_ids"]![0]!.GetValue<int>();
        }
        Assert.Equal(k, FirstToken());
        Assert.Equal(a, FirstToken("--ilql-beta", "0"));
        var plain = Cli.RlhfProcess.Run("generate", "--model", "stories260k", "--prompt-ids", "1", "--ilql-beta", "1");
        Assert.NotEqual(0, plain.ExitCode);
        Assert.Contains("has no ILQL heads", plain.Stderr);
    }

    [Fact]
    public void Heads_for_another_model_or_with_a_wrong_config_are_refused_naming_the_file()
    {
        using var policy = Stories();
        Directory.CreateDirectory(dir);
        using (var other = new IlqlHeads(64, 100)) IlqlHeadsFile.Save(other, dir, 0.001, 1);
        var e = Assert.Throws<RlhfException>(() => IlqlHeadsFile.Load(dir, policy));
        Assert.Contains(IlqlHeadsFile.ConfigFile, e.Message);
        Assert.Contains("vocab_size 100", e.Message);

        using (var two = new IlqlHeads(64, 512)) IlqlHeadsFile.Save(two, dir, 0.001, 1);
        string config = Path.Combine(dir, IlqlHeadsFile.ConfigFile);
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"two_qs\": true", "\"two_qs\": false"));
        e = Assert.Throws<RlhfException>(() => IlqlHeadsFile.Load(dir, policy));
        Assert.Contains(IlqlHeadsFile.WeightsFile, e.Message);
        Assert.Contains("unexpected tensor 'ilql_heads.q_heads.1.", e.Message);

        File.Delete(Path.Combine(dir, IlqlHeadsFile.WeightsFile));
        e = Assert.Throws<RlhfException>(() => IlqlHeadsFile.Load(dir, policy));
        Assert.Contains("weights are missing", e.Message);
    }

    [Fact]
    public void Training_on_scored_completions_gives_the_rewarded_first_token_the_larger_advantage()
    {
        using var policy = Stories();
        torch.manual_seed(5);
        using var heads = new IlqlHeads(64, 512);
        const int good = 261, bad = 300;
        var prompts = Enumerable.Range(0, 4).Select(i => new[] { 1, 403 + i }).ToArray();
        var examples = prompts.SelectMany(p => new[]
        {
            new ScoredExample(p, [good, 378, 432, 2], 1.0),
            new ScoredExample(p, [bad, 378, 432, 2], 0.0),
        }).ToList();
        var config = new IlqlConfig
        {
            Epochs = 40, BatchSize = 8, MaxLength = 16, MaxPromptLength = 4, TotalSteps = 40, Alpha = 1.0, StepsForTargetQSync = 1,
            Optimizer = new OptimizerConfig { LearningRate = 1e-3, Schedule = ScheduleKind.Constant, WarmupRatio = 0 },
        };
        var log = new MetricsLog(null);
        var result = new IlqlTrainer(policy, heads, config, padId: 0) { Metrics = log }.Train(examples, examples.Take(4).ToList());
        Assert.Equal(40, log.Rows.Count);
        Assert.True(log.Rows[^1]["loss_q"] < log.Rows[0]["loss_q"] / 2, $"TD loss {log.Rows[0]["loss_q"]:F3} → {log.Rows[^1]["loss_q"]:F3}");
        foreach (var key in new[] { "loss", "loss_v", "loss_cql", "loss_awac", "values_mean", "qvalues_mean", "awac_weight_mean", "grad_norm" })
            Assert.All(log.Rows, r => Assert.True(double.IsFinite(r[key]), $"{key} = {r[key]}"));
        Assert.True(double.IsFinite(result["eval_loss"]));

        using var _ = no_grad();
        foreach (var p in prompts)
        {
            var hidden = new List<Tensor>();
            policy.Forward(tensor(p.Select(x => (long)x).ToArray(), [1, p.Length]), hiddenStates: hidden);
            var adv = heads.Advantage(hidden[^1].narrow(1, p.Length - 1, 1)).flatten().data<float>().ToArray();
            Assert.True(adv[good] > adv[bad] + 0.5, $"prompt {string.Join(",", p)}: advantage {adv[good]:F3} (rewarded) vs {adv[bad]:F3}");
        }
    }

    [Fact]
    public void Scored_files_read_rewards_rankings_and_pairs_and_name_the_line_of_a_missing_reward()
    {
        Directory.CreateDirectory(dir);
        string file = Path.Combine(dir, "scored.jsonl");
        File.WriteAllLines(file,
        [
            """{"prompt": "Once", "completion": " upon", "reward": -0.5}""",
            """{"prompt": "Tom", "responses": ["a", "b", "c"], "ranking": [2, 0, 1]}""",
            """{"prompt": "Sue", "chosen": "x", "rejected": "y"}""",
        ]);
        var records = DatasetLoader.LoadScored(file).Records;
        Assert.Equal(new ScoredCompletion[]
        {
            new("Once", " upon", -0.5), new("Tom", "c", 1.0), new("Tom", "a", 0.5), new("Tom", "b", 0.0), new("Sue", "x", 1.0), new("Sue", "y", 0.0),
        }, records);

        File.AppendAllLines(file, ["""{"prompt": "Max", "completion": " ran"}"""]);
        var e = Assert.Throws<RlhfException>(() => DatasetLoader.LoadScored(file));
        Assert.Contains(":4:", e.Message);
        Assert.Contains("reward", e.Message);
    }
}
