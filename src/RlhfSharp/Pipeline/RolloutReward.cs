using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using RlhfSharp.Rewards;
using RlhfSharp.Tokenization;
using static TorchSharp.torch;

namespace RlhfSharp.Pipeline;

/// <summary>
/// The reward of a batch of rollouts in the online stages: the weighted sum of the recipe's <see cref="RewardSource"/>s.
/// Reward models score the sampled token ids directly; rule and HTTP rewards, process reward models and T5 reward models
/// score the decoded prompt and completion, and so does a decoder-only reward model when the policy's ids are not its own
/// (a T5 policy: <c>scoreText</c>).
/// </summary>
public sealed class RolloutReward : IDisposable
{
    readonly List<(ScoreModel Model, double Weight)> models = [];
    readonly CompositeReward? text;
    readonly List<IDisposable> owned = [];
    readonly ITokenizer tokenizer;

    /// <param name="sources">The terms; <c>[rm]</c> when empty.</param>
    /// <param name="runRm">The run's reward model, for <c>rm</c> terms without a path.</param>
    /// <param name="vocabSize">The policy's vocabulary: a reward model must share it to read the sampled ids.</param>
    /// <param name="onPolicyBase">
    /// A reward model folder (and its dtype) as a model on the policy's base weights (<see cref="SharedBase"/>), or null
    /// where it cannot sit there: then it is loaded as its own model.
    /// </param>
    /// <param name="scoreText">
    /// The policy does not share a decoder-only reward model's tokenizer (an encoder-decoder policy): such a model reads the
    /// decoded prompt + completion with its own tokenizer (<see cref="ScoreModelReward"/>), as a T5 reward model always does.
    /// </param>
    public RolloutReward(IReadOnlyList<RewardSource> sources, string runRm, int vocabSize, ITokenizer tokenizer,
        Func<string, ScalarType, ScoreModel?>? onPolicyBase = null, bool scoreText = false)
    {
        this.tokenizer = tokenizer;
        var textParts = new List<(IRewardFunction, double)>();
        try
        {
            foreach (var s in sources.Count == 0 ? [new RewardSource()] : sources)
            {
                if (s.Source == RewardSourceKind.Rm)
                {
                    string dir = s.Path ?? runRm;
                    if (!Directory.Exists(dir))
                        throw new RlhfException(s.Path is null ? $"{dir} not found: run 'rlhf rm' with the same --out first, or give the rm reward a path."
                            : $"rewards: reward model folder {dir} not found.");
                    if (PretrainedSeq2SeqModel.IsSeq2Seq(dir))
                    {
                        // A T5 reward model reads the decoded text with its own tokenizer, like a process reward model.
                        var t5 = Seq2SeqRewardModelReward.Load(dir, Models.ModelDtype.Parse(s.Dtype, "rewards.dtype"));
                        owned.Add(t5);
                        textParts.Add((t5, s.Weight));
                        continue;
                    }
                    var dtype = Models.ModelDtype.Parse(s.Dtype, "rewards.dtype");
                    var rm = onPolicyBase?.Invoke(dir, dtype) ?? HuggingFaceCheckpoint.LoadScoreModel(dir, dtype);
                    owned.Add(rm);
                    foreach (var p in rm.parameters()) p.requires_grad = false;
                    if (scoreText)
                    {
                        // The prompt + completion text in the reward model's own tokenizer, in the form it was trained on.
                        textParts.Add((new ScoreModelReward(rm, TokenizerLoader.Load(dir)), s.Weight));
                        continue;
                    }
                    if (rm.Config.VocabSize != vocabSize)
                        throw new RlhfException($"{dir}: the reward model's vocabulary ({rm.Config.VocabSize}) differs from the policy's ({vocabSize}); they must share a tokenizer.");
                    models.Add((rm, s.Weight));
                    continue;
                }
                textParts.Add((s.Source == RewardSourceKind.Prm ? ProcessReward(s, runRm) : TextReward(s), s.Weight));
            }
        }
        catch { Dispose(); throw; }
        if (textParts.Count > 0) text = new CompositeReward(textParts, "rules");
    }

    int EosId => tokenizer.EosId ?? throw new RlhfException("the tokenizer has no EOS id: a reward model scores sequences ending in EOS.");

    /// <summary>Whether the sum is just one reward model with weight 1 (the InstructGPT setting).</summary>
    public bool IsRewardModelOnly => text is null && models is [(_, 1.0)];

    /// <summary>A process reward model scoring the decoded rollouts (default: the run's <c>prm/checkpoint</c>, beside its <c>rm</c>).</summary>
    ProcessRewardModel ProcessReward(RewardSource s, string runRm)
    {
        string dir = s.Path ?? System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(runRm)))!, "prm", "checkpoint");
        if (!Directory.Exists(dir))
            throw new RlhfException(s.Path is null ? $"{dir} not found: run 'rlhf prm' with the same --out first, or give the prm reward a path."
                : $"rewards: process reward model folder {dir} not found.");
        var prm = ProcessRewardModel.Load(dir, s.Aggregation, Models.ModelDtype.Parse(s.Dtype, "rewards.dtype"));
        owned.Add(prm);
        // It reads the decoded text with its own tokenizer, so unlike an rm term it need not share the policy's vocabulary.
        foreach (var p in prm.Model.parameters()) p.requires_grad = false;
        return prm;
    }

    IRewardFunction TextReward(RewardSource s)
    {
        switch (s.Source)
        {
            case RewardSourceKind.Vader: return LexiconReward.VaderCompound();
            case RewardSourceKind.Afinn: return LexiconReward.AfinnMean();
            case RewardSourceKind.Length: return new LengthReward(s.TargetWords, s.PenaltyPerWord);
            case RewardSourceKind.Repetition: return new RepetitionPenalty(s.N);
            case RewardSourceKind.Keyword:
                if (string.IsNullOrEmpty(s.Pattern)) throw new RlhfException("rewards: a keyword reward needs a 'pattern'.");
                return new KeywordReward(s.Pattern);
            case RewardSourceKind.Http:
                if (!Uri.TryCreate(s.Url, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
                    throw new RlhfException($"rewards: an http reward needs an absolute http(s) 'url', not '{s.Url}'.");
                string? token = null;
                if (s.TokenEnv is not null && (token = Environment.GetEnvironmentVariable(s.TokenEnv)) is null or "")
                    throw new RlhfException($"rewards: token_env '{s.TokenEnv}' is not set in the environment.");
                var http = new HttpReward(url, token, TimeSpan.FromSeconds(s.TimeoutSeconds), s.Retries);
                owned.Add(http);
                return http;
            default: throw new RlhfException($"rewards: unknown source {s.Source}.");
        }
    }

    /// <summary>One reward per row of <paramref name="batch"/>, float32, on the rollouts' device.</summary>
    public Tensor Score(SampleBatch batch)
    {
        var device = batch.Sequences.device;
        var total = zeros(batch.Sequences.shape[0], dtype: ScalarType.Float32, device: device);
        if (models.Count > 0)
        {
            // Every row ends in EOS, the form the reward model was trained on (RewardModelInput).
            var (ids, mask) = RewardModelInput.OfRollouts(batch, EosId, tokenizer.EosIds);
            foreach (var (model, weight) in models)
                total = total + weight * model.Rewards(ids, mask).to(ScalarType.Float32);
        }
        if (text is not null)
        {
            var (prompts, texts) = RunStages.RolloutTexts(batch, tokenizer);
            var scores = text.Score(prompts, texts).Select(x => (float)x).ToArray();
            total = total + tensor(scores, device: device);
        }
        return total;
    }

    public void Dispose()
    {
        foreach (var o in owned) o.Dispose();
        owned.Clear();
    }
}
