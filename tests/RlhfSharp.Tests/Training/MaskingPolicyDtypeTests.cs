using RlhfSharp.Algorithms.Nlpo;
using RlhfSharp.Checkpoints;
using RlhfSharp.Lora;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Training;

/// <summary><c>nlpo.mask_dtype</c>: NLPO's frozen masking policy held in bf16 (half its memory), its top-p set taken in float32.</summary>
public sealed class MaskingPolicyDtypeTests
{
    [Fact]
    public void A_bf16_masking_policy_holds_the_actor_rounded_to_bf16_and_masks_nearly_as_the_float32_one()
    {
        using var scope = NewDisposeScope();
        using var policy = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        var config = new NlpoConfig { TopMask = 0.9, MinTokensToKeep = 1 };
        using var f32 = new MaskingPolicy(policy, config, [2]);
        using var bf16 = new MaskingPolicy(policy, config with { MaskDtype = "bf16" }, [2]);
        var half = (RlhfSharp.Models.CausalLM)bf16.Modules["mask_policy"];
        var full = (RlhfSharp.Models.CausalLM)f32.Modules["mask_policy"];
        Assert.All(half.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        Assert.Equal(SharedBase.StorageBytes(full), 2 * SharedBase.StorageBytes(half));
        // Each weight is the actor's rounded once to bf16.
        var source = policy.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in half.named_parameters())
            Assert.True(p.eq(source[name].to(ScalarType.BFloat16)).all().item<bool>(), name);

        var ids = tensor(new long[,] { { 1, 403, 407, 261, 378, 300, 301, 302 } });
        var mask = ones_like(ids);
        var a = f32.Allowed(ids, mask, 0, 7);
        var b = bf16.Allowed(ids, mask, 0, 7);
        Assert.Equal(ScalarType.Bool, b.dtype);
        // The sets differ only at the top-p boundary, where bf16's rounding moves a token across it.
        double agree = a.eq(b).to(float32).mean().item<float>();
        Assert.True(agree > 0.98, $"the bf16 mask agrees with the float32 one on {agree:P1} of the vocabulary");
    }

    [Fact]
    public void An_unknown_mask_dtype_names_the_key()
    {
        using var policy = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        var e = Assert.Throws<RlhfException>(() => new MaskingPolicy(policy, new NlpoConfig { MaskDtype = "int8" }, [2]));
        Assert.Contains("nlpo.mask_dtype", e.Message);
    }
}
