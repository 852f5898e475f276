using System.Text.Json.Nodes;
using RlhfSharp.Algorithms.Reward;
using RlhfSharp.Checkpoints;
using RlhfSharp.Lora;
using RlhfSharp.Training;
using RlhfSharp.Tests.Tokenization;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Lora;

/// <summary>
/// LoRA on a T5 reward model (PEFT task_type SEQ_CLS on T5ForSequenceClassification): adapters on PEFT's T5 targets q and v
/// of the body, the classification head trained whole and saved as <c>modules_to_save</c>.
/// </summary>
public sealed class T5RewardLoraTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    static string Base => Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5", "t5v11_tiny_gated");

    [Fact]
    public void A_lora_t5_reward_model_trains_only_adapters_and_head_and_its_peft_folder_loads_and_scores_identically()
    {
        using var scope = NewDisposeScope();
        manual_seed(11);
        using var rm = T5Checkpoint.LoadSequenceClassification(Base, allowNewHead: true);
        var before = rm.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        T5Lora.Attach(rm, new LoraConfig { R = 4, Alpha = 8, Dropout = 0 });
        // Chosen rows end in 5 then EOS (1), rejected in 7: something to learn.
        var groups = Enumerable.Range(0, 12).Select(i => new RankedGroup([[10 + i, 20 + i % 5, 5, 1], [10 + i, 20 + i % 5, 7, 1]])).ToList();
        var trainer = new RewardTrainer(rm, new RewardConfig { Epochs = 4, PromptsPerBatch = 4, Optimizer = new OptimizerConfig { LearningRate = 1e-2, WarmupRatio = 0 } }, 0);
        trainer.Train(groups, []);
        trainer.NormalizeOn(groups.Select(g => g.Sequences[0]).ToList());
        Assert.NotNull(rm.RewardMean);

        var after = rm.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach());
        foreach (var (name, p) in before)
        {
            bool same = p.eq(after[name]).all().item<bool>();
            // The pairwise loss is blind to the output bias (it cancels in r_chosen − r_rejected), so that alone may stay.
            if (name == "classification_head.out_proj.bias") continue;
            Assert.True(name.StartsWith("classification_head.", StringComparison.Ordinal) ? !same : same, $"{name}: {(same ? "unchanged" : "changed")}");
        }
        var adapters = after.Where(kv => kv.Key.Contains("_lora", StringComparison.Ordinal)).ToList();
        Assert.Equal((2 * 2 + 3 * 4) * 2, adapters.Count); // q and v: self-attention of 2 encoder blocks, self and cross of 3 decoder blocks; A and B each
        Assert.Contains(adapters, kv => kv.Key.EndsWith("lora_B", StringComparison.Ordinal) && kv.Value.abs().sum().item<float>() > 0); // B left zero

        string saved = Path.Combine(_dir.Path, "rm");
        T5Lora.Save(rm, saved, Base);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(saved, PeftAdapter.ConfigFile)))!;
        Assert.Equal("SEQ_CLS", (string)config["task_type"]!);
        Assert.Equal(["classification_head"], config["modules_to_save"]!.AsArray().Select(n => (string)n!));
        Assert.Equal(["q", "v"], config["target_modules"]!.AsArray().Select(n => (string)n!));
        var keys = SafeTensorsHeader.Read(Path.Combine(saved, PeftAdapter.WeightsFile)).Entries.Select(e => e.Name).ToList();
        // PEFT's names on T5ForSequenceClassification: base_model.model. + transformer.<module> + .lora_A.weight; the head whole.
        Assert.Contains("base_model.model.transformer.encoder.block.0.layer.0.SelfAttention.q.lora_A.weight", keys);
        Assert.Contains("base_model.model.transformer.decoder.block.2.layer.1.EncDecAttention.v.lora_B.weight", keys);
        Assert.Contains("base_model.model.classification_head.out_proj.bias", keys);
        Assert.False(File.Exists(Path.Combine(saved, "model.safetensors")));

        using var loaded = T5Checkpoint.LoadSequenceClassification(saved);
        Assert.Equal(rm.RewardMean, loaded.RewardMean);
        var ids = tensor(new long[] { 10, 22, 5, 1, 0, 13, 21, 7, 30, 1 }, [2, 5]);
        var mask = ids.ne(0).to(int64);
        mask[0, 4] = 0; // right padding
        rm.eval();
        using (no_grad())
        {
            var want = rm.Rewards(ids, mask);
            HfFixture.AssertClose(want, loaded.Rewards(ids, mask), null, "reloaded scores", atol: 1e-5, rtol: 1e-5);
            Assert.True((want[0] - want[1]).item<float>() > 0, "the trained reward model prefers the chosen ending");
        }
        // The merged body differs from the base only in the targeted q and v projections.
        using var plain = T5Checkpoint.Load(Base);
        var basis = plain.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in loaded.transformer.named_parameters())
        {
            bool targeted = name.EndsWith(".q.weight", StringComparison.Ordinal) || name.EndsWith(".v.weight", StringComparison.Ordinal);
            Assert.True(targeted != p.eq(basis[name]).all().item<bool>(), $"{name}: targeted {targeted}");
        }
    }
}
