using RlhfSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Models;

/// <summary>
/// Each decoder layer runs in its own dispose scope (<see cref="DecoderBody"/>.ScopedLayer, issue 12 part 3): a forward
/// leaves one managed handle per layer (its output) in the caller's scope instead of every intermediate, which TorchSharp
/// would otherwise keep alive until that scope ends (most of a PPO step's transient memory on SmolLM2-135M's shape). The
/// gradients are unchanged: LayerCheckpointTests compares this path with the layers re-run unscoped inside the backward,
/// bit for bit, and the 17 seeded stage runs keep their checkpoints.
/// </summary>
[Collection(ProcessWideStateCollection.Name)] // seeds torch's global generator for the model's init
public sealed class LayerScopeTests
{
    /// <summary>Handles one forward of a <paramref name="layers"/>-layer model of <paramref name="family"/> leaves in its scope.</summary>
    static long HandlesLeft(string family, int layers, bool grad, bool checkpoint = false)
    {
        using var outer = NewDisposeScope();
        manual_seed(3);
        var model = new CausalLM(LayerCheckpointTests.Config(family) with { NumLayers = layers });
        if (checkpoint) LayerCheckpoint.Enable(model, "sft.gradient_checkpointing");
        model.train(grad);
        var ids = randint(1, 61, [2, 8], dtype: ScalarType.Int64);
        var mask = ones(2, 8, dtype: ScalarType.Int64);
        using var _ = grad ? enable_grad() : no_grad();
        using var forward = NewDisposeScope();
        var logits = model.Forward(ids, mask);
        Assert.Equal([2L, 8, 61], logits.shape);
        return forward.DisposablesCount;
    }

    [Theory]
    [InlineData("llama", false)]
    [InlineData("llama", true)]
    [InlineData("gpt2", true)]
    [InlineData("gpt_neox", false)]
    [InlineData("gpt_neox", true)]
    [InlineData("opt", true)]
    public void A_forward_leaves_one_handle_per_decoder_layer_in_the_callers_scope(string family, bool grad)
    {
        long three = HandlesLeft(family, 3, grad), six = HandlesLeft(family, 6, grad);
        // Three more layers: their three outputs, nothing else (before the layer scopes, every layer left ~20 handles).
        Assert.Equal(3, six - three);
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("gpt_neox")]
    public void A_checkpointed_forward_leaves_a_few_handles_per_layer(string family)
    {
        long three = HandlesLeft(family, 3, grad: true, checkpoint: true), six = HandlesLeft(family, 6, grad: true, checkpoint: true);
        // The layer's output and what LayerCheckpoint saves for the backward (its input is the previous output, the
        // generator state), not the layer's intermediates.
        Assert.InRange(six - three, 3, 3 * 4);
    }
}
