using System.Text.Json.Nodes;
using RlhfSharp.Algorithms.Preference;
using RlhfSharp.Algorithms.Sft;
using RlhfSharp.Checkpoints;
using RlhfSharp.Models.T5;
using RlhfSharp.Pipeline;
using RlhfSharp.Recipes;
using RlhfSharp.Training;
using Xunit.Abstractions;

namespace RlhfSharp.Tests.Pipeline;

/// <summary>The pipeline's encoder-decoder task (issue 19): a random T5 trained on the run's feedback and graded beside the others.</summary>
public sealed class EncoderDecoderTaskTests(ITestOutputHelper output) : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-t5task-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    /// <summary>The short pipeline with less feedback, no decoder-only method or PRM, and a T5 of 1 + 1 layers.</summary>
    static PipelineConfig Tiny => KinderStoriesPipelineTests.Short with
    {
        Prompts = new PromptsConfig { Train = 32, Eval = 8 },
        Feedback = new FeedbackConfig { DemonstrationPrompts = 16, RankingPrompts = 16, K = 2, MaxNewTokens = 16 },
        Eval = new EvalConfig { MaxNewTokens = 16, BestOfN = 2, ShownSamples = 2 },
        Algos = [], TrainPrm = false,
        EncoderDecoder = new EncoderDecoderTaskConfig
        {
            DModel = 32, DKv = 8, DFf = 64, NumLayers = 1, NumDecoderLayers = 1, NumHeads = 4,
            Sft = new SftConfig { Epochs = 6, BatchSize = 8, MaxLength = 128, Optimizer = new OptimizerConfig { LearningRate = 1e-2, Schedule = ScheduleKind.Constant, WarmupRatio = 0 } },
            Algos = [AlignmentMethod.Dpo],
            Dpo = new DpoConfig { Epochs = 1, BatchSize = 8, MaxLength = 128, MaxPromptLength = 64, Optimizer = new OptimizerConfig { LearningRate = 1e-3 } },
        },
    };

    [Fact]
    public void The_target_is_the_completion_as_it_continues_the_prompt_and_decodes_back_to_it()
    {
        using var base_ = PretrainedModel.Load("stories260k");
        var task = new EncoderDecoderTask(new EncoderDecoderTaskConfig(), base_, tmp);
        const string prompt = "Once upon a time, there was a little girl named Lily.";
        const string completion = " She liked to play with her red ball in the park.";
        int[] target = task.Target(prompt, completion);
        Assert.Equal(base_.Tokenizer.EosId, target[^1]);
        Assert.Equal(completion, base_.Tokenizer.Decode(target[..^1]));
        // The same tokens the decoder-only form holds after the prompt: the joint encoding is the prompt's, then the target's.
        int[] joint = base_.Tokenizer.Encode(prompt + completion, addBos: true);
        Assert.Equal(joint, (int[])[.. base_.EncodePrompt(prompt), .. target[..^1]]);
        Assert.Equal(base_.Tokenizer.Encode(prompt, addBos: false), task.EncoderInput(prompt));
        var config = task.ModelConfig;
        Assert.Equal((base_.Tokenizer.VocabSize, 1, 2), (config.VocabSize, config.DecoderStartTokenId, config.EosTokenId));
    }

    [Fact]
    public void Only_the_offline_preference_methods_are_taken_and_a_wrong_one_is_named()
    {
        var c = Recipe.Load<PipelineConfig>(null, ["encoder_decoder.algos=[\"ipo\",\"simpo\"]"]);
        Assert.Equal([AlignmentMethod.Ipo, AlignmentMethod.Simpo], c.EncoderDecoder!.Algos);
        Assert.Null(Recipe.Load<PipelineConfig>(null).EncoderDecoder);
        var e = Assert.Throws<RlhfException>(() => Recipe.Load<PipelineConfig>(null, ["encoder_decoder.algos=[\"ppo\"]"]));
        Assert.Contains("encoder_decoder.algos", e.Message);
        Assert.Contains("'ppo'", e.Message);
    }

    [Fact]
    public void A_tiny_run_trains_t5_sft_and_dpo_grades_them_beside_the_others_and_a_rerun_skips_them()
    {
        string run = Path.Combine(tmp, "run");
        var summary = new KinderStoriesPipeline(Tiny, run).Run();
        output.WriteLine(string.Join(", ", summary.StageSeconds.Select(kv => $"{kv.Key} {kv.Value:F1} s")));

        foreach (var stage in new[] { "t5_sft", "t5_dpo" })
        {
            string checkpoint = Path.Combine(run, stage, "checkpoint");
            Assert.True(T5Config.IsT5(checkpoint), stage);
            Assert.True(File.Exists(Path.Combine(run, stage, "done.json")), stage);
            // The checkpoint stands alone: `rlhf generate --prompt` on it (its own tokenizer files) feeds the encoder what it was trained on.
            using var loaded = PretrainedSeq2SeqModel.Load(checkpoint);
            using var base_ = PretrainedModel.Load("stories260k");
            Assert.Equal(new EncoderDecoderTask(Tiny.EncoderDecoder!, base_, run).EncoderInput("Tom found a kite."), loaded.EncodePrompt("Tom found a kite."));
        }
        // SFT from random weights learned the data: its held-out loss is far below a uniform guess over the vocabulary.
        var sftDone = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "t5_sft", "done.json")))!;
        Assert.True(sftDone["eval_loss"]!.GetValue<double>() < Math.Log(512) - 1, sftDone.ToJsonString());

        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "summary.json")))!;
        foreach (var policy in new[] { "base", "sft", "t5_sft", "t5_dpo" })
        {
            var p = json["policies"]![policy]!;
            double mean = p["gold_mean"]!.GetValue<double>();
            var ci = p["gold_ci95"]!.AsArray().Select(x => x!.GetValue<double>()).ToArray();
            Assert.True(ci[0] <= mean && mean <= ci[1], policy);
            Assert.True(double.IsFinite(p["proxy_mean"]!.GetValue<double>()), policy);
            Assert.Equal(Tiny.Prompts.Eval, p["samples"]!.GetValue<int>());
        }
        // The KL column of a T5 row is to the T5 SFT model: zero for it, not zero once DPO has moved the policy (a sampled
        // estimate, which a tiny run's small move can leave slightly below zero: −0.0013 on one machine).
        Assert.Equal(0.0, summary.Policies["t5_sft"].KlToSft, 9);
        Assert.NotEqual(0.0, summary.Policies["t5_dpo"].KlToSft);
        Assert.Contains("t5_dpo", File.ReadAllText(Path.Combine(run, "report.html")));

        var log = new List<string>();
        new KinderStoriesPipeline(Tiny, run) { Log = log.Add }.Run();
        Assert.Contains("t5_sft: already done, skipped", log);
        Assert.Contains("t5_dpo: already done, skipped", log);
    }
}
