using RlhfSharp.Algorithms.Preference;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Generation;
using RlhfSharp.Lora;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Training;

/// <summary>
/// RWKV-4 in the RL loop beyond ClassicFamilyTrainingTests' chain: the log-probs a trainer recomputes over left-padded
/// rollouts are the ones the sampler drew with (the reason pads freeze the state), and LoRA-DPO trains the adapters only.
/// </summary>
public sealed class RwkvTrainingTests
{
    static string Dir => new HfFixture("rwkv_tiny", "hf-wave2").Dir;

    [Fact]
    public void Training_forward_over_left_padded_rollouts_reads_the_samplers_logprobs()
    {
        using var policy = HuggingFaceCheckpoint.LoadCausalLM(Dir);
        var sampler = new Sampler(policy) { PadId = 0, EosIds = [2] };
        int[][] prompts = [[1, 5], [1, 5, 6, 7, 8], [1, 9, 10, 11]];
        var (ids, mask) = sampler.LeftPad(prompts);
        using var batch = sampler.Sample(ids, mask, new SamplingOptions { Temperature = 1, MaxNewTokens = 6, Seed = 4, StopAtEos = false });
        using var _ = no_grad();
        var logits = policy.Forward(batch.Sequences, batch.AttentionMask);
        int p = batch.PromptLength;
        var recomputed = TokenLogprobs.Of(logits, batch.Sequences).narrow(1, p - 1, batch.ResponseMask.shape[1]);
        HfFixture.AssertClose(batch.ModelLogprobs, recomputed, batch.ResponseMask, "rollout log-probs");
    }

    [Fact]
    public void Lora_dpo_trains_the_adapters_and_leaves_the_base_untouched()
    {
        using var policy = HuggingFaceCheckpoint.LoadCausalLM(Dir);
        using var untouched = HuggingFaceCheckpoint.LoadCausalLM(Dir);
        manual_seed(5);
        LoraModel.Attach(policy, new LoraConfig { R = 4, Alpha = 8, Dropout = 0.0 });
        using var reference = policy.WithoutAdapters();
        var pairs = Enumerable.Range(0, 8).Select(i => new PreferenceExample([1, 5, 6, 7], [10, 11, 12, 2], [30 + i, 31 + i, 2])).ToList();
        var dpo = new PreferenceTrainer(policy, reference, new DpoConfig
        {
            Epochs = 3, BatchSize = 4, Optimizer = new OptimizerConfig { LearningRate = 1e-2, WarmupRatio = 0, Schedule = ScheduleKind.Constant },
        }, padId: 0);
        Assert.Equal(0.0, dpo.Evaluate(pairs)["eval_margin"]);
        Assert.True(dpo.Train(pairs, pairs)["eval_margin"] > 0, "DPO margin did not grow");
        var original = untouched.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        foreach (var (name, w) in policy.named_parameters().Where(x => !x.name.Contains("_lora.")))
            Assert.True(w.eq(original[name]).all().item<bool>(), $"base weight {name} changed");
    }
}
