using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Models;
using RlhfSharp.Models.T5;
using RlhfSharp.Tests.Tokenization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Models;

/// <summary>
/// Model dropout as transformers v4.44 applies it (issues 13 and 18): read from each family's config.json and written
/// back, drawn in training mode only (eval mode is exactly the dropout-free model), at the sites of each modeling file
/// (pinned by a probability of 1 at one site, which must equal a closed form: the weights that site feeds zeroed), with
/// inverted scaling.
/// </summary>
[Collection(ProcessWideStateCollection.Name)] // draws torch's global generator (dropout masks)
public sealed class ModelDropoutTests
{
    /// <summary>A copy of fixture <paramref name="set"/>/<paramref name="name"/> with its config.json edited.</summary>
    static TempDir Fixture(string set, string name, Action<JsonObject> edit)
    {
        var dir = new TempDir();
        foreach (var f in Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "fixtures", set, name)))
            File.Copy(f, Path.Combine(dir.Path, Path.GetFileName(f)));
        var path = Path.Combine(dir.Path, "config.json");
        var j = (JsonObject)JsonNode.Parse(File.ReadAllText(path))!;
        edit(j);
        File.WriteAllText(path, j.ToJsonString());
        return dir;
    }

    static void Set(JsonObject j, string keys, double p)
    {
        foreach (var key in keys.Split(',')) j[key] = p;
    }

    // Two rows, the second left-padded by three: both the plain causal path and the explicit mask's.
    static (Tensor Ids, Tensor Mask) Batch(long vocab)
    {
        var gen = new Generator(7);
        var ids = randint(1, Math.Min(vocab, 50), [2, 8], generator: gen, dtype: ScalarType.Int64);
        var mask = tensor(new long[,] { { 1, 1, 1, 1, 1, 1, 1, 1 }, { 0, 0, 0, 1, 1, 1, 1, 1 } });
        return (ids, mask);
    }

    // Each decoder family's dropout keys (as its config.json names them).
    public static TheoryData<string, string, string> Families => new()
    {
        { "hf", "gpt2_tiny", "embd_pdrop,attn_pdrop,resid_pdrop" },
        { "hf", "llama_tiny_gqa", "attention_dropout" },          // grouped-query: sdpa over folded query heads
        { "hf", "qwen2_tiny_tied", "attention_dropout" },
        { "hf-wave2", "opt_tiny", "dropout,attention_dropout" },
        { "hf-wave2", "opt_tiny_proj", "dropout,attention_dropout" }, // post-LN blocks (do_layer_norm_before false)
        { "hf-wave2", "neox_tiny_parallel", "attention_dropout,hidden_dropout" },
        { "hf-wave2", "neox_tiny_sequential", "attention_dropout,hidden_dropout" },
        { "hf-wave2", "gptj_tiny", "embd_pdrop,attn_pdrop,resid_pdrop" },
        { "hf-wave2", "bloom_tiny", "attention_dropout,hidden_dropout" },
        { "hf-wave3", "phi3_tiny", "attention_dropout,resid_pdrop" },
        { "hf-wave3", "mistral_sliding_tiny", "attention_dropout" },
        { "hf-wave3", "gemma2_tiny", "attention_dropout" },       // scores written out (soft-capping)
    };

    [Theory]
    [MemberData(nameof(Families))]
    public void Train_mode_draws_new_masks_and_eval_mode_is_the_dropout_free_model(string set, string name, string keys)
    {
        using var scope = NewDisposeScope();
        using var withDir = Fixture(set, name, j => Set(j, keys, 0.2));
        using var withoutDir = Fixture(set, name, j => Set(j, keys, 0.0));
        using var with = HuggingFaceCheckpoint.LoadCausalLM(withDir.Path);
        using var without = HuggingFaceCheckpoint.LoadCausalLM(withoutDir.Path);
        Assert.True(ModelDropout.Any(with));
        Assert.False(ModelDropout.Any(without));
        var (ids, mask) = Batch(with.Config.VocabSize);

        var reference = without.Forward(ids, mask);
        using (no_grad()) Assert.True(reference.eq(with.Forward(ids, mask)).all().item<bool>(), "eval mode must not drop anything");
        without.train();
        Assert.True(reference.eq(without.Forward(ids, mask)).all().item<bool>(), "p = 0 in training must add no op");

        with.train();
        manual_seed(1);
        var first = with.Forward(ids, mask);
        var second = with.Forward(ids, mask);
        Assert.False(first.eq(second).all().item<bool>(), "two training forwards drew the same masks");
        Assert.False(first.eq(reference).all().item<bool>(), "a training forward dropped nothing");
        manual_seed(1);
        Assert.True(first.eq(with.Forward(ids, mask)).all().item<bool>(), "the masks come from the global generator");
        with.eval();
        Assert.True(reference.eq(with.Forward(ids, mask)).all().item<bool>(), "back in eval mode the model is the dropout-free one");
    }

    /// <summary>Zeroes the value rows of every attention's fused q/k/v projection: the attention output is then o_proj(0).</summary>
    static void ZeroValues(CausalLM model)
    {
        var c = model.Config;
        int hd = c.HeadDim;
        using var _ = no_grad();
        foreach (var a in model.modules().OfType<AttentionBase>())
        {
            var rows = new List<long>();
            if (a is Attention)
                rows.AddRange(Enumerable.Range((c.NumHeads + c.NumKvHeads) * hd, c.NumKvHeads * hd).Select(i => (long)i));
            else if (c.Family is ModelFamily.Neox or ModelFamily.Bloom) // per head [q_h | k_h | v_h]
                for (int h = 0; h < c.NumHeads; h++) rows.AddRange(Enumerable.Range(h * 3 * hd + 2 * hd, hd).Select(i => (long)i));
            else rows.AddRange(Enumerable.Range(2 * c.NumHeads * hd, c.NumHeads * hd).Select(i => (long)i));
            var index = tensor(rows.ToArray());
            a.qkv_proj.weight!.index_fill_(0, index, 0);
            a.qkv_proj.bias?.index_fill_(0, index, 0);
        }
    }

    /// <summary>Zeroes what each block adds to the residual stream: the attention's o_proj and the MLP's down_proj.</summary>
    static void ZeroBlockOutputs(CausalLM model)
    {
        using var _ = no_grad();
        foreach (var a in model.modules().OfType<AttentionBase>()) { a.o_proj.weight!.zero_(); a.o_proj.bias?.zero_(); }
        foreach (var m in model.modules().OfType<Mlp>()) { m.down_proj.weight!.zero_(); m.down_proj.bias?.zero_(); }
    }

    static void ZeroEmbeddings(CausalLM model)
    {
        using var _ = no_grad();
        model.model.Embeddings.weight!.zero_();
        if (model.model is RlhfSharp.Models.Transformer { embed_positions: { } positions }) positions.weight!.zero_();
    }

    static void SetAll(nn.Module model, Dropouts d)
    {
        foreach (var host in model.modules().OfType<IDropoutHost>()) host.Dropout = d;
    }

    // Where each site sits, by family: p = 1 at one site makes the body's output that of the same model, in eval mode, with
    // the weights feeding that site zeroed. A mask at the wrong place would not: attention dropout after o_proj drops its
    // bias too, residual dropout after the add drops the stream, embedding dropout after the first layer keeps its input.
    public static TheoryData<string, string, string> Sites => new()
    {
        { "hf", "gpt2_tiny", "embedding" }, { "hf", "gpt2_tiny", "attention" }, { "hf", "gpt2_tiny", "residual" },
        { "hf", "llama_tiny_gqa", "attention" },
        { "hf-wave2", "opt_tiny", "attention" }, { "hf-wave2", "opt_tiny", "residual" },
        { "hf-wave2", "opt_tiny_proj", "residual" },
        { "hf-wave2", "neox_tiny_parallel", "embedding" }, { "hf-wave2", "neox_tiny_parallel", "attention" }, { "hf-wave2", "neox_tiny_parallel", "residual" },
        { "hf-wave2", "neox_tiny_sequential", "residual" },
        { "hf-wave2", "gptj_tiny", "embedding" }, { "hf-wave2", "gptj_tiny", "attention" }, { "hf-wave2", "gptj_tiny", "residual" },
        { "hf-wave2", "bloom_tiny", "attention" }, { "hf-wave2", "bloom_tiny", "residual" },
        { "hf-wave3", "phi3_tiny", "attention" }, { "hf-wave3", "phi3_tiny", "residual" },
        { "hf-wave3", "gemma2_tiny", "attention" },
    };

    [Theory]
    [MemberData(nameof(Sites))]
    public void A_certain_drop_at_one_site_equals_zeroing_what_feeds_it(string set, string name, string site)
    {
        using var scope = NewDisposeScope();
        var dir = Path.Combine(AppContext.BaseDirectory, "fixtures", set, name);
        using var dropped = HuggingFaceCheckpoint.LoadCausalLM(dir);
        using var zeroed = HuggingFaceCheckpoint.LoadCausalLM(dir);
        SetAll(dropped, site switch
        {
            "embedding" => new Dropouts { Embedding = 1.0 },
            "attention" => new Dropouts { Attention = 1.0 },
            _ => new Dropouts { Residual = 1.0 },
        });
        SetAll(zeroed, Dropouts.None);
        if (site == "embedding") ZeroEmbeddings(zeroed);
        else if (site == "attention") ZeroValues(zeroed);
        else ZeroBlockOutputs(zeroed);
        var (ids, mask) = Batch(dropped.Config.VocabSize);
        using var _ = no_grad();
        var expected = zeroed.model.Forward(ids, mask);
        var plain = dropped.model.Forward(ids, mask); // eval mode: nothing dropped
        dropped.train();
        var actual = dropped.model.Forward(ids, mask);
        Assert.False(plain.eq(expected).all().item<bool>(), "the zeroed weights changed nothing: the check would pass anywhere");
        Assert.True(actual.eq(expected).all().item<bool>(),
            $"{name} {site}: max |diff| {(actual - expected).abs().max().item<float>():E2} from the closed form");
    }

    [Fact]
    public void T5_drops_at_the_sites_of_modeling_t5_and_eval_mode_is_the_dropout_free_model()
    {
        using var scope = NewDisposeScope();
        using var withDir = Fixture("hf-t5", "t5_tiny", j => j["dropout_rate"] = 0.2);
        using var with = T5Checkpoint.Load(withDir.Path);
        using var without = T5Checkpoint.Load(Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5", "t5_tiny"));
        Assert.Equal(0.2, with.Config.DropoutRate);
        Assert.True(ModelDropout.Any(with));
        var (ids, mask) = Batch(with.Config.VocabSize);
        var decoderIds = ids.narrow(1, 0, 5);
        using (no_grad())
        {
            var reference = without.Forward(ids, mask, decoderIds);
            Assert.True(reference.eq(with.Forward(ids, mask, decoderIds)).all().item<bool>());
            with.train();
            manual_seed(1);
            var first = with.Forward(ids, mask, decoderIds);
            Assert.False(first.eq(with.Forward(ids, mask, decoderIds)).all().item<bool>());
            Assert.False(first.eq(reference).all().item<bool>());
        }

        // p = 1 per site against the weights it reads zeroed: embeddings (shared), attention probabilities (every v),
        // the feed-forward activation (wo); the residual site also drops the stack's normed output, so the decoder returns 0.
        Tensor Decoded(T5ForConditionalGeneration m) => m.Decode(decoderIds, m.Encode(ids, mask), mask);
        void Check(Dropouts d, Action<T5ForConditionalGeneration> zero)
        {
            using var dropped = T5Checkpoint.Load(Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5", "t5_tiny"));
            using var zeroed = T5Checkpoint.Load(Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5", "t5_tiny"));
            SetAll(dropped, d);
            using var _ = no_grad();
            zero(zeroed);
            var expected = Decoded(zeroed);
            Assert.False(expected.eq(Decoded(dropped)).all().item<bool>());
            dropped.train();
            Assert.True(expected.eq(Decoded(dropped)).all().item<bool>(), $"{d}: max |diff| {(Decoded(dropped) - expected).abs().max().item<float>():E2}");
        }
        Check(new Dropouts { Embedding = 1 }, m => m.shared.weight!.zero_());
        Check(new Dropouts { Attention = 1 }, m => { foreach (var a in m.modules().OfType<T5Attention>()) a.v.weight!.zero_(); });
        Check(new Dropouts { Activation = 1 }, m => { foreach (var f in m.modules().OfType<T5DenseFF>()) f.wo.weight!.zero_(); });
        using var all = T5Checkpoint.Load(Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5", "t5_tiny"));
        SetAll(all, new Dropouts { Residual = 1 });
        all.train();
        using (no_grad()) Assert.Equal(0.0, Decoded(all).abs().max().item<float>());
    }

    [Fact]
    public void Dropout_is_inverted_kept_values_are_scaled_by_one_over_one_minus_p_and_the_mean_is_kept()
    {
        using var scope = NewDisposeScope();
        manual_seed(2);
        var x = ones(200_000);
        var y = Dropouts.Apply(x, 0.25, training: true);
        var kept = y.masked_select(y.ne(0));
        Assert.True(kept.eq(1 / 0.75f).all().item<bool>());
        Assert.InRange(y.mean().item<float>(), 0.99, 1.01);
        Assert.Same(x, Dropouts.Apply(x, 0.25, training: false));
        Assert.Same(x, Dropouts.Apply(x, 0.0, training: true));

        // scaled_dot_product_attention's dropout_p (the attention site of the sdpa paths) is the probability of dropping,
        // inverted too: uniform probabilities over 64 keys, values 1, so each output is (kept keys / 64) / (1 − p).
        var q = zeros(1, 1, 4096, 8);
        var k = zeros(1, 1, 64, 8);
        var v = ones(1, 1, 64, 8);
        var o = nn.functional.scaled_dot_product_attention(q, k, v, p: 0.25);
        Assert.InRange(o.mean().item<float>(), 0.99, 1.01);
        var kept64 = o.select(3, 0) * 64 * 0.75f; // whole numbers of kept keys per query
        Assert.True((kept64 - kept64.round()).abs().max().item<float>() < 1e-3);
        Assert.InRange(kept64.mean().item<float>(), 64 * 0.74, 64 * 0.76);
    }

    // One config.json per family with every dropout key nonzero; the values must come back unchanged from a save.
    public static TheoryData<string, string, string> RoundTrips => new()
    {
        { "hf", "gpt2_tiny", "embd_pdrop=0.11,attn_pdrop=0.12,resid_pdrop=0.13" },
        { "hf", "llama_tiny_gqa", "attention_dropout=0.14" },
        { "hf-wave2", "opt_tiny", "dropout=0.15,attention_dropout=0.16,activation_dropout=0.17,layerdrop=0.32" },
        { "hf-wave2", "neox_tiny_parallel", "attention_dropout=0.18,hidden_dropout=0.19" },
        { "hf-wave2", "gptj_tiny", "embd_pdrop=0.21,attn_pdrop=0.22,resid_pdrop=0.23" },
        { "hf-wave2", "bloom_tiny", "attention_dropout=0.24,hidden_dropout=0.25" },
        { "hf-wave3", "phi3_tiny", "attention_dropout=0.26,resid_pdrop=0.27,embd_pdrop=0.28" },
        { "hf-wave3", "mixtral_tiny", "attention_dropout=0.29" },
        { "hf-wave3", "gemma_tiny", "attention_dropout=0.31" },
    };

    [Theory]
    [MemberData(nameof(RoundTrips))]
    public void A_saved_config_writes_the_dropout_keys_back_unchanged(string set, string name, string values)
    {
        var j = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", set, name, "config.json")))!;
        var pairs = values.Split(',').Select(kv => kv.Split('=')).Select(kv => (Key: kv[0], Value: double.Parse(kv[1], System.Globalization.CultureInfo.InvariantCulture))).ToList();
        foreach (var (key, value) in pairs) j[key] = value;
        var config = TransformerConfig.FromJson(j, "config.json");
        Assert.True(config.Dropout.Any);
        var saved = config.ToJson("X");
        foreach (var (key, value) in pairs) Assert.Equal(value, saved[key]!.GetValue<double>());
        Assert.Equal(config.Dropout, TransformerConfig.FromJson(saved, "saved").Dropout);
    }

    [Fact]
    public void Missing_keys_take_the_v4_44_config_defaults_and_a_saved_t5_keeps_its_rate()
    {
        JsonObject Read(string set, string name, params string[] drop)
        {
            var j = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", set, name, "config.json")))!;
            foreach (var key in drop) j.Remove(key);
            return j;
        }
        // GPT2Config: 0.1 each; OPTConfig: dropout 0.1, attention_dropout 0.0.
        Assert.Equal(new Dropouts { Embedding = 0.1, Attention = 0.1, Residual = 0.1 },
            TransformerConfig.FromJson(Read("hf", "gpt2_tiny", "embd_pdrop", "attn_pdrop", "resid_pdrop"), "c").Dropout);
        Assert.Equal(new Dropouts { Residual = 0.1 },
            TransformerConfig.FromJson(Read("hf-wave2", "opt_tiny", "dropout", "attention_dropout", "activation_dropout"), "c").Dropout);
        Assert.Equal(Dropouts.None, TransformerConfig.FromJson(Read("hf-wave2", "gptj_tiny", "embd_pdrop", "attn_pdrop", "resid_pdrop"), "c").Dropout);

        using var dir = new TempDir();
        var t5 = Read("hf-t5", "t5_tiny", "dropout_rate");
        File.WriteAllText(Path.Combine(dir.Path, "config.json"), t5.ToJsonString());
        var config = T5Config.Load(Path.Combine(dir.Path, "config.json"));
        Assert.Equal(0.1, config.DropoutRate); // configuration_t5.py
        var saved = config with { DropoutRate = 0.35 };
        File.WriteAllText(Path.Combine(dir.Path, "config.json"), saved.ToJson().ToJsonString());
        Assert.Equal(0.35, T5Config.Load(Path.Combine(dir.Path, "config.json")).DropoutRate);
    }

    [Theory]
    [InlineData("opt_tiny", "layerdrop", "1.5")]
    [InlineData("opt_tiny", "dropout", "1.5")]
    [InlineData("bloom_tiny", "hidden_dropout", "-0.1")]
    public void A_probability_outside_zero_to_one_is_refused_naming_the_key(string name, string key, string value)
    {
        var j = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-wave2", name, "config.json")))!;
        j[key] = JsonNode.Parse(value);
        var e = Assert.Throws<RlhfException>(() => TransformerConfig.FromJson(j, "config.json"));
        Assert.Contains(key, e.Message);
    }

    [Fact]
    public void Opt_layerdrop_skips_whole_layers_in_training_only()
    {
        using var scope = NewDisposeScope();
        using var allDir = Fixture("hf-wave2", "opt_tiny", j => { Set(j, "dropout,attention_dropout", 0.0); j["layerdrop"] = 1.0; });
        using var halfDir = Fixture("hf-wave2", "opt_tiny", j => { Set(j, "dropout,attention_dropout", 0.0); j["layerdrop"] = 0.5; });
        using var all = HuggingFaceCheckpoint.LoadCausalLM(allDir.Path);
        using var half = HuggingFaceCheckpoint.LoadCausalLM(halfDir.Path);
        using var zeroed = HuggingFaceCheckpoint.LoadCausalLM(Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-wave2", "opt_tiny"));
        SetAll(zeroed, Dropouts.None);
        ZeroBlockOutputs(zeroed); // pre-LN blocks adding nothing: the identity, as a skipped layer
        var (ids, mask) = Batch(all.Config.VocabSize);
        using var _ = no_grad();
        var plain = all.model.Forward(ids, mask);
        Assert.True(plain.eq(half.model.Forward(ids, mask)).all().item<bool>(), "eval mode skips nothing");
        all.train();
        var hidden = new List<Tensor>();
        var skippedAll = all.model.Forward(ids, mask, hiddenStates: hidden);
        Assert.True(skippedAll.eq(zeroed.model.Forward(ids, mask)).all().item<bool>(), "layerdrop 1 must skip every layer");
        Assert.Equal(all.Config.NumLayers + 1, hidden.Count); // each skipped layer's input is still recorded, as HF
        half.train();
        manual_seed(4);
        var outputs = Enumerable.Range(0, 8).Select(_ => half.model.Forward(ids, mask)).ToList();
        Assert.Contains(outputs, o => !o.eq(outputs[0]).all().item<bool>()); // some draws keep a layer that others skip
    }

    [Fact]
    public void Disable_turns_off_every_site_of_a_model()
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "fixtures", "hf", "gpt2_tiny");
        using var model = HuggingFaceCheckpoint.LoadCausalLM(dir);
        Assert.True(ModelDropout.Any(model)); // the fixture's config has 0.1 everywhere, as GPT-2's
        using (var clone = model.Clone()) Assert.True(ModelDropout.Any(clone));
        RlhfSharp.Lora.LoraModel.DisableDropout(model);
        Assert.False(ModelDropout.Any(model));
        Assert.All(model.modules().OfType<IDropoutHost>(), h => Assert.Equal(Dropouts.None, h.Dropout));
        using (var clone = model.Clone()) Assert.False(ModelDropout.Any(clone)); // a clone is the model as it is, not as its config was
    }
}
