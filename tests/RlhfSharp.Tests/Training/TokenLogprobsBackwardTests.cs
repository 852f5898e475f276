using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Training;

/// <summary>
/// TokenLogprobs.Of's one-pass backward against autograd's backward of the same expression (gather − logsumexp): the
/// log-probs and the logits' gradient equal bit for bit, signed zeros included, so seeded runs keep their weights.
/// </summary>
public sealed class TokenLogprobsBackwardTests
{
    static int[] Bits(Tensor t) => t.contiguous().data<float>().ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();

    [Theory]
    [InlineData(1.0)]
    [InlineData(0.7)]
    public void The_one_pass_backward_equals_autograds_bit_for_bit(double temperature)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(5);
        // Wide logits (some probabilities underflow to 0) and an upstream gradient with zeros (masked positions).
        var logits = (randn([3, 9, 50], generator: generator) * 40).requires_grad_();
        var ids = randint(0, 50, [3, 9], generator: generator);
        var upstream = randn([3, 8], generator: generator) * (rand([3, 8], generator: generator) > 0.3).to(ScalarType.Float32);

        var fused = TokenLogprobs.Of(logits, ids, temperature);
        fused.backward([upstream]);
        var fusedGrad = logits.grad!.clone();
        logits.grad!.zero_();

        // Autograd's own backward of the expression Of computed before (TokenLogprobs.Of at 38b3557).
        var predicting = logits.narrow(1, 0, 8).to(ScalarType.Float32);
        if (temperature != 1.0) predicting = predicting / temperature;
        var expected = predicting.gather(2, ids.narrow(1, 1, 8).unsqueeze(-1)).squeeze(-1) - predicting.logsumexp(-1);
        expected.backward([upstream]);

        Assert.Equal(Bits(expected.detach()), Bits(fused.detach()));
        Assert.Equal(Bits(logits.grad!), Bits(fusedGrad));
        Assert.Contains(0, Bits(fusedGrad)); // the positions the zero upstream gradient reaches
    }

    [Fact]
    public void Without_gradients_the_log_probs_are_the_plain_expressions()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(9);
        var logits = randn([2, 6, 30], generator: generator);
        var ids = randint(0, 30, [2, 6], generator: generator);
        using (no_grad())
        {
            var lp = TokenLogprobs.Of(logits, ids);
            var predicting = logits.narrow(1, 0, 5);
            Assert.Equal(Bits(predicting.gather(2, ids.narrow(1, 1, 5).unsqueeze(-1)).squeeze(-1) - predicting.logsumexp(-1)), Bits(lp));
            Assert.False(lp.requires_grad);
        }
    }
}
