using RlhfSharp.Models.T5;

namespace RlhfSharp.Pipeline;

/// <summary>
/// The encoder-decoder rows of the pipeline (<see cref="EncoderDecoderTaskConfig"/>): a random T5 in the pipeline's
/// tokenizer, SFT on the run's feedback into <c>&lt;run&gt;/t5_sft</c>, then each preference method from it into
/// <c>&lt;run&gt;/t5_&lt;method&gt;</c>; graded by <see cref="Seq2SeqPolicyEvaluator"/>.
/// </summary>
/// <remarks>
/// The prompt is the encoder input as <c>rlhf generate --prompt</c> encodes it for a T5 checkpoint of the run
/// (<see cref="PretrainedSeq2SeqModel.EncodePrompt"/> with the tokenizer files saved beside it: the prompt's tokens, no BOS,
/// no EOS, since Llama's template adds neither to an encoder input), so generation feeds the encoder what it was trained on;
/// the target is the completion's tokens exactly as they continue the prompt in the decoder-only form
/// (<see cref="SftExample.FromPromptCompletion"/>'s split), then EOS. So a T5 sample decodes into the same kind of continuation text the decoder-only policies produce, and the
/// gold rubric and the proxy RM read prompt + text the same way for both.
/// </remarks>
public sealed class EncoderDecoderTask(EncoderDecoderTaskConfig config, PretrainedModel base_, string runDir)
{
    /// <summary>The stage folder of the T5 SFT model and of a T5 method.</summary>
    public const string SftStage = "t5_sft";
    public static string StageOf(AlignmentMethod method) => "t5_" + Recipes.Recipe.Json.PropertyNamingPolicy!.ConvertName(method.ToString());

    /// <summary>The preference loss of a method the task trains, or null.</summary>
    public static PreferenceLossKind? LossOf(AlignmentMethod method) => method switch
    {
        AlignmentMethod.Dpo => PreferenceLossKind.Sigmoid,
        AlignmentMethod.Ipo => PreferenceLossKind.Ipo,
        AlignmentMethod.Orpo => PreferenceLossKind.Orpo,
        AlignmentMethod.Simpo => PreferenceLossKind.Simpo,
        _ => null,
    };

    ITokenizer Tokenizer => base_.Tokenizer;
    int Eos => Tokenizer.EosId ?? throw new RlhfException("the pipeline's tokenizer has no EOS id: the T5 task ends its inputs and targets with it.");

    /// <summary>
    /// The T5 config: the task's shape in the pipeline's vocabulary with its EOS and pad (EOS: llama2.c has no pad). The
    /// decoder starts from BOS, as the decoder-only policies' text does (T5's own vocabularies start from pad, which this
    /// one does not have).
    /// </summary>
    public T5Config ModelConfig => new()
    {
        VocabSize = Tokenizer.VocabSize, DModel = config.DModel, DKv = config.DKv, DFf = config.DFf, NumLayers = config.NumLayers,
        NumDecoderLayersSet = config.NumDecoderLayers, NumHeads = config.NumHeads, RelativeAttentionNumBuckets = config.RelativeAttentionNumBuckets,
        RelativeAttentionMaxDistance = config.RelativeAttentionMaxDistance, FeedForwardProj = "relu", TieWordEmbeddings = true,
        PadTokenId = Tokenizer.PadId ?? Eos, DecoderStartTokenId = Tokenizer.BosId ?? Tokenizer.PadId ?? Eos, EosTokenId = Eos,
        DropoutRate = 0.0, // the built-in model trains a few steps from scratch without dropout, as it always has (seeded results unchanged)
    };

    /// <summary>The encoder input of a prompt: its tokens.</summary>
    public int[] EncoderInput(string prompt) => Tokenizer.Encode(prompt, addBos: false);

    /// <summary>The decoder target: the completion's tokens as they continue <paramref name="prompt"/>, then EOS.</summary>
    public int[] Target(string prompt, string completion)
    {
        var joint = SftExample.FromPromptCompletion(Tokenizer, prompt, completion, int.MaxValue, addBos: false);
        int start = Array.IndexOf(joint.LossMask, true);
        return joint.InputIds[start..]; // ends with the EOS FromPromptCompletion appends
    }

    /// <summary>
    /// Trains the T5 SFT model and each method, each through <paramref name="stage"/> (the pipeline's skip-when-done
    /// runner); returns each method's stage summary.
    /// </summary>
    public Dictionary<AlignmentMethod, Dictionary<string, double>> Train(IReadOnlyList<Demonstration> demonstrations, IReadOnlyList<Ranking> rankings,
        Func<string, Func<Dictionary<string, double>>, Dictionary<string, double>> stage, IProgress<TrainingProgress>? progress, CancellationToken cancel)
    {
        stage(SftStage, () => Sft(demonstrations, rankings, progress, cancel));
        var done = new Dictionary<AlignmentMethod, Dictionary<string, double>>();
        foreach (var method in config.Algos.Distinct())
            done[method] = stage(StageOf(method), () => Preference(method, rankings, progress, cancel));
        return done;
    }

    Dictionary<string, double> Sft(IReadOnlyList<Demonstration> demonstrations, IReadOnlyList<Ranking> rankings, IProgress<TrainingProgress>? progress, CancellationToken cancel)
    {
        var demos = demonstrations.Select(d => new Seq2SeqExample(EncoderInput(d.Prompt), Target(d.Prompt, d.Completion))).ToList();
        var (train, eval) = RunStages.HoldOut(demos);
        // The ranked samples first, the demonstrations after them (the trainer keeps this order unless it shuffles).
        if (config.SftOnRankedSamples)
            train = [.. rankings.SelectMany(r => r.Responses.Select(resp => new Seq2SeqExample(EncoderInput(r.Prompt), Target(r.Prompt, resp)))), .. train];
        manual_seed(config.Seed);
        using var model = new T5ForConditionalGeneration(ModelConfig);
        var state = new StageState(Path.Combine(runDir, SftStage), config.Sft.KeepLast);
        using var metrics = MetricsLog.Resuming(Path.Combine(state.Dir, "metrics.jsonl"), state.SavedStep);
        var result = new Seq2SeqSftTrainer(model, config.Sft, Tokenizer.PadId ?? Eos) { Progress = progress, Metrics = metrics }.Train(train, eval, state, cancel);
        T5Checkpoint.Save(model, state.CheckpointDir, writeExtras: base_.WriteTokenizerFiles);
        result["examples"] = train.Count;
        return result;
    }

    Dictionary<string, double> Preference(AlignmentMethod method, IReadOnlyList<Ranking> rankings, IProgress<TrainingProgress>? progress, CancellationToken cancel)
    {
        // Best against worst of each ranking, held out as the decoder-only methods' pairs (KinderStoriesPipeline's MethodData.Pairs).
        var pairs = rankings.Select(r => new Seq2SeqPreference(EncoderInput(r.Prompt), Target(r.Prompt, r.Responses[0]), Target(r.Prompt, r.Responses[^1]))).ToList();
        var (train, eval) = RunStages.HoldOut(pairs);
        var dpo = config.Dpo with { Loss = LossOf(method)!.Value };
        string sft = Path.Combine(runDir, SftStage, "checkpoint");
        using var policy = T5Checkpoint.Load(sft);
        using var reference = dpo.NeedsReference ? T5Checkpoint.Load(sft) : null;
        var state = new StageState(Path.Combine(runDir, StageOf(method)), dpo.KeepLast);
        using var metrics = MetricsLog.Resuming(Path.Combine(state.Dir, "metrics.jsonl"), state.SavedStep);
        var result = new Seq2SeqDpoTrainer(policy, reference ?? policy, dpo, Tokenizer.PadId ?? Eos) { Progress = progress, Metrics = metrics }.Train(train, eval, state, cancel);
        T5Checkpoint.Save(policy, state.CheckpointDir, writeExtras: base_.WriteTokenizerFiles);
        return result;
    }

    /// <summary>Grades the T5 SFT model and every trained method on the held-out prompts (KL to the T5 SFT model).</summary>
    public Dictionary<string, PolicyEvaluation> Evaluate(Seq2SeqPolicyEvaluator evaluator, List<string> prompts, SamplingOptions options,
        Dictionary<AlignmentMethod, Dictionary<string, double>> trained, CancellationToken cancel)
    {
        var encoderInputs = prompts.Select(EncoderInput).ToList();
        using var sft = T5Checkpoint.Load(Path.Combine(runDir, SftStage, "checkpoint"));
        var results = new Dictionary<string, PolicyEvaluation> { [SftStage] = evaluator.Sample(SftStage, sft, sft, prompts, encoderInputs, options, cancel) };
        foreach (var (method, done) in trained)
        {
            string stage = StageOf(method);
            using var policy = T5Checkpoint.Load(Path.Combine(runDir, stage, "checkpoint"));
            var r = evaluator.Sample(stage, policy, sft, prompts, encoderInputs, options, cancel);
            double seconds = done.GetValueOrDefault("seconds");
            results[stage] = r with { Score = r.Score with { TrainSeconds = seconds, TrainTokensPerSecond = done.GetValueOrDefault("tokens_processed") / Math.Max(1e-9, seconds) } };
        }
        return results;
    }
}
