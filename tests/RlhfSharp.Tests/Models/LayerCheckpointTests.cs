using RlhfSharp.Algorithms.Preference;
using RlhfSharp.Algorithms.Sft;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Lora;
using RlhfSharp.Models;
using RlhfSharp.Pipeline;
using RlhfSharp.Recipes;
using RlhfSharp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Models;

/// <summary>
/// Gradient checkpointing per decoder layer (<see cref="LayerCheckpoint"/>, issue 12 part 3) against LibTorch's own
/// autograd on the normal path: the same loss and the same gradient of every parameter, bit for bit, for the families
/// of each body (LLaMA with grouped-query attention, GPT-2, GPT-NeoX, OPT), with LoRA adapters whose dropout masks must
/// be drawn again in the backward, and in seeded SFT and DPO runs; keys that reach every stage, refusals naming them.
/// </summary>
[Collection(ProcessWideStateCollection.Name)] // seeds and draws torch's global generator (LoRA init, dropout masks)
public sealed class LayerCheckpointTests
{
    internal static TransformerConfig Config(string family) => family switch
    {
        "llama" => new TransformerConfig
        {
            ModelType = "llama", VocabSize = 61, HiddenSize = 16, IntermediateSize = 32, NumLayers = 3, NumHeads = 4, NumKvHeads = 2,
            MaxPositions = 32, TieWordEmbeddings = true,
        },
        "gpt2" => new TransformerConfig
        {
            ModelType = "gpt2", VocabSize = 61, HiddenSize = 16, IntermediateSize = 64, NumLayers = 3, NumHeads = 4, NumKvHeads = 4,
            MaxPositions = 32, TieWordEmbeddings = true, QkvBias = true, OutputBias = true, MlpBias = true, HiddenAct = "gelu_new",
        },
        "gpt_neox" => new TransformerConfig
        {
            ModelType = "gpt_neox", VocabSize = 61, HiddenSize = 16, IntermediateSize = 64, NumLayers = 3, NumHeads = 4, NumKvHeads = 4,
            MaxPositions = 32, TieWordEmbeddings = false, RotaryDims = 2, ParallelResidual = true, QkvBias = true, OutputBias = true,
            MlpBias = true, HiddenAct = "gelu",
        },
        "opt" => new TransformerConfig
        {
            ModelType = "opt", VocabSize = 61, HiddenSize = 16, IntermediateSize = 64, NumLayers = 3, NumHeads = 4, NumKvHeads = 4,
            MaxPositions = 32, TieWordEmbeddings = true, QkvBias = true, OutputBias = true, MlpBias = true, HiddenAct = "relu",
        },
        _ => throw new ArgumentException(family),
    };

    // Three rows right-padded to 10 tokens (real lengths 10, 7, 4).
    static (Tensor Ids, Tensor Mask) Batch()
    {
        var gen = new Generator(11);
        var ids = randint(1, 61, [3, 10], generator: gen, dtype: ScalarType.Int64);
        var mask = tensor(new long[] { 10, 7, 4 }).unsqueeze(1).gt(arange(10).unsqueeze(0)).to(ScalarType.Int64);
        return (ids * mask, mask);
    }

    sealed record Pass(float Loss, Dictionary<string, Tensor> Grads, float NextDraw);

    /// <summary>
    /// A seeded model of <paramref name="family"/> (optionally with LoRA), one training forward of a weighted log-likelihood
    /// over the padded batch and its backward: the loss, every parameter's gradient and the global generator's next draw
    /// after the backward.
    /// </summary>
    static Pass Run(string family, bool checkpoint, LoraConfig? lora = null, Dropouts? dropout = null)
    {
        using var outer = NewDisposeScope();
        manual_seed(3);
        var model = new CausalLM(Config(family) with { Dropout = dropout ?? Dropouts.None });
        if (lora is not null)
        {
            LoraModel.Attach(model, lora);
            // B starts at zero (PEFT), which would leave A without a gradient: a trained adapter instead.
            using (no_grad()) foreach (var (name, p) in model.named_parameters().Where(p => p.name.Contains("lora_B"))) p.normal_(0, 0.5);
        }
        if (checkpoint) LayerCheckpoint.Enable(model, "sft.gradient_checkpointing");
        model.train();
        var (ids, mask) = Batch();
        manual_seed(5); // the dropout masks' draws start here on both paths
        Tensor loss;
        using (NewDisposeScope())
        {
            var logprobs = TokenLogprobs.Of(model.Forward(ids, mask), ids); // (3, 9): token t + 1 from position t
            var weights = linspace(-1, 2, 27).reshape(3, 9) * mask.narrow(1, 1, 9);
            loss = (-(logprobs * weights).sum()).MoveToOuterDisposeScope();
        }
        loss.backward();
        var grads = model.named_parameters().Where(p => p.parameter.grad is not null)
            .ToDictionary(p => p.name, p => p.parameter.grad!.clone().DetachFromDisposeScope());
        float next = rand(1).item<float>();
        return new Pass(loss.item<float>(), grads, next);
    }

    static void AssertSameGradients(Pass normal, Pass checkpointed)
    {
        Assert.Equal(normal.Loss, checkpointed.Loss);
        Assert.Equal(normal.Grads.Keys.Order(), checkpointed.Grads.Keys.Order());
        foreach (var (name, g) in normal.Grads)
        {
            var c = checkpointed.Grads[name];
            Assert.True(g.abs().max().item<float>() > 0, $"{name}: the normal path's gradient is zero, nothing is compared");
            double diff = (g - c).abs().max().item<float>();
            Assert.True(g.eq(c).all().item<bool>(), $"{name}: gradient differs by up to {diff:E2} with checkpointing");
        }
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("gpt2")]
    [InlineData("gpt_neox")]
    [InlineData("opt")]
    public void Checkpointed_layers_give_autograds_gradients_of_every_parameter(string family)
    {
        var normal = Run(family, checkpoint: false);
        var checkpointed = Run(family, checkpoint: true);
        AssertSameGradients(normal, checkpointed);
        // The handles each path leaves per layer are checked in LayerScopeTests: since DecoderBody.ScopedLayer both leave a
        // few, and checkpointing's saving is in what the autograd graph keeps, which handles do not show.
        foreach (var g in normal.Grads.Values.Concat(checkpointed.Grads.Values)) g.Dispose();
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("gpt_neox")]
    public void LoRA_adapters_with_dropout_get_the_same_gradients_and_the_generator_ends_where_it_would(string family)
    {
        // Dropout 0.3: a recomputation that drew new masks would change every adapter gradient. The embeddings are frozen, so
        // the first layer's input needs no gradient and only the adapters make the checkpointed layers differentiable.
        var lora = new LoraConfig { R = 4, Alpha = 8, Dropout = 0.3 };
        var normal = Run(family, checkpoint: false, lora);
        var checkpointed = Run(family, checkpoint: true, lora);
        Assert.All(normal.Grads.Keys, name => Assert.Contains("lora_", name));
        Assert.NotEmpty(normal.Grads);
        AssertSameGradients(normal, checkpointed);
        Assert.Equal(normal.NextDraw, checkpointed.NextDraw);
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("gpt2")]
    [InlineData("gpt_neox")]
    [InlineData("opt")]
    public void Model_dropout_masks_are_drawn_again_in_the_recomputation_and_give_the_same_gradients(string family)
    {
        // torch.utils.checkpoint's preserve_rng_state: the backward's recomputation replays the forward's generator state, so
        // every attention-probability, residual and embedding mask is the same and so is every gradient.
        var dropout = new Dropouts { Embedding = 0.1, Attention = 0.2, Residual = 0.3 };
        var normal = Run(family, checkpoint: false, dropout: dropout);
        var checkpointed = Run(family, checkpoint: true, dropout: dropout);
        var undropped = Run(family, checkpoint: false);
        Assert.NotEqual(undropped.Loss, normal.Loss); // the masks are there
        AssertSameGradients(normal, checkpointed);
        Assert.Equal(normal.NextDraw, checkpointed.NextDraw);
        foreach (var g in normal.Grads.Values.Concat(checkpointed.Grads.Values).Concat(undropped.Grads.Values)) g.Dispose();
    }

    [Fact]
    public void Eval_mode_no_grad_and_cached_forwards_are_not_checkpointed_and_give_the_same_logits()
    {
        manual_seed(3);
        using var model = new CausalLM(Config("llama"));
        var (ids, mask) = Batch();
        model.train();
        var plain = model.Forward(ids, mask).detach();
        LayerCheckpoint.Enable(model, "sft.gradient_checkpointing");
        var checkpointed = model.Forward(ids, mask);
        Assert.True(checkpointed.requires_grad);
        Assert.True(plain.eq(checkpointed.detach()).all().item<bool>());
        model.eval();
        using (no_grad()) Assert.True(plain.eq(model.Forward(ids, mask)).all().item<bool>());
    }

    static readonly int[] Prompt = [1, 403, 407, 261];
    static readonly int[] Target = [300, 301, 302, 2];

    [Fact]
    public void Sft_and_dpo_with_gradient_checkpointing_write_the_same_metrics_rows()
    {
        var demo = new SftExample([.. Prompt, .. Target], [.. Prompt.Select(_ => false), .. Target.Select(_ => true)]);
        var sft = new SftConfig { Epochs = 3, BatchSize = 2, Optimizer = new OptimizerConfig { LearningRate = 3e-3, WarmupRatio = 0, Schedule = ScheduleKind.Constant } };
        List<Dictionary<string, double>> Sft(bool on)
        {
            using var model = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
            var config = sft with { GradientCheckpointing = on };
            config.CheckpointLayers(model, "sft");
            var log = new MetricsLog(null);
            new SftTrainer(model, config, padId: 0) { Metrics = log }.Train([demo, demo], []);
            return log.Rows;
        }
        AssertSameRows(Sft(false), Sft(true), "loss", "grad_norm");

        var pair = new PreferenceExample(Prompt, Target, [310, 311, 312, 2]);
        var dpo = new DpoConfig { Epochs = 2, BatchSize = 2, Optimizer = new OptimizerConfig { LearningRate = 1e-3, WarmupRatio = 0, Schedule = ScheduleKind.Constant } };
        List<Dictionary<string, double>> Dpo(bool on)
        {
            using var policy = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
            using var reference = policy.Clone();
            var config = dpo with { GradientCheckpointing = on };
            config.CheckpointLayers(policy, "dpo");
            var log = new MetricsLog(null);
            new PreferenceTrainer(policy, reference, config, padId: 0) { Metrics = log }.Train([pair, pair], []);
            return log.Rows;
        }
        AssertSameRows(Dpo(false), Dpo(true), "loss", "rewards/margins", "grad_norm");
    }

    static void AssertSameRows(List<Dictionary<string, double>> off, List<Dictionary<string, double>> on, params string[] keys)
    {
        Assert.Equal(off.Count, on.Count);
        Assert.True(off.Count >= 2);
        for (int i = 0; i < off.Count; i++)
            foreach (var key in keys)
                Assert.True(off[i][key] == on[i][key], $"step {i + 1} {key}: {off[i][key]} without checkpointing vs {on[i][key]} with");
        Assert.NotEqual(off[0]["loss"], off[^1]["loss"]);
    }

    [Theory]
    [InlineData("sft")]
    [InlineData("rm")]
    [InlineData("prm")]
    [InlineData("dpo")]
    [InlineData("ppo")]
    [InlineData("grpo")]
    [InlineData("ilql")]
    [InlineData("rs.sft")]
    [InlineData("online_dpo.dpo")]
    public void The_switch_reaches_every_stage_and_defaults_to_off(string section)
    {
        StageConfig Section(PipelineConfig c) => section switch
        {
            "sft" => c.Sft, "rm" => c.Rm, "prm" => c.Prm, "dpo" => c.Dpo, "ppo" => c.Ppo, "grpo" => c.Grpo, "ilql" => c.Ilql,
            "rs.sft" => c.Rs.Sft, "online_dpo.dpo" => c.OnlineDpo.Dpo, _ => throw new ArgumentException(section),
        };
        Assert.False(Section(Recipe.Load<PipelineConfig>(null, [])).GradientCheckpointing);
        Assert.True(Section(Recipe.Load<PipelineConfig>(null, [$"{section}.gradient_checkpointing=true"])).GradientCheckpointing);
    }

    [Fact]
    public void A_mixture_of_experts_model_is_refused_naming_the_key()
    {
        manual_seed(3);
        using var model = new CausalLM(Config("llama") with { ModelType = "mixtral", Moe = new MoeConfig { NumExperts = 4, TopK = 2, NormTopK = true, ExpertSize = 16 } });
        var e = Assert.Throws<RlhfException>(() => new DpoConfig { GradientCheckpointing = true }.CheckpointLayers(model, "dpo"));
        Assert.Contains("dpo.gradient_checkpointing", e.Message);
        Assert.Contains("mixture-of-experts", e.Message);
        new DpoConfig().CheckpointLayers(model, "dpo"); // off: nothing to refuse
    }

    [Fact]
    public void A_t5_model_is_refused_naming_the_key()
    {
        using var t5 = T5Checkpoint.Load(Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5", "t5_tiny"));
        var e = Assert.Throws<RlhfException>(() => new SftConfig { GradientCheckpointing = true }.CheckpointLayers(t5, "sft"));
        Assert.Contains("sft.gradient_checkpointing", e.Message);
    }
}
