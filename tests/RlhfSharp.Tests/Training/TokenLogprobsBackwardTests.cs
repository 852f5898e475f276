using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Training;

/// <summary>
/// TokenLogprobs.Of (the log-softmax at the target, one sequence at a time, with a one-pass backward) against autograd on
/// the whole batch: the log-probs equal <c>log_softmax(x).gather</c> bit for bit, and the logits' gradient equals
/// autograd's backward of both textbook forms (log_softmax + gather, gather − logsumexp) to float32 rounding.
/// </summary>
public sealed class TokenLogprobsBackwardTests
{
    static int[] Bits(Tensor t) => t.contiguous().data<float>().ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();

    [Theory]
    [InlineData(1.0)]
    [InlineData(0.7)]
    public void The_one_pass_backward_equals_autograds(double temperature)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(5);
        // Wide logits (most probabilities far below exp(−87), some 0) and an upstream gradient with zeros (masked positions).
        var logits = (randn([3, 9, 50], generator: generator) * 40).requires_grad_();
        var ids = randint(0, 50, [3, 9], generator: generator);
        var upstream = randn([3, 8], generator: generator) * (rand([3, 8], generator: generator) > 0.3).to(ScalarType.Float32);

        var fused = TokenLogprobs.Of(logits, ids, temperature);
        fused.backward([upstream]);
        var fusedGrad = logits.grad!.clone();

        foreach (var form in new Func<Tensor, Tensor, Tensor>[]
        {
            (x, y) => x.log_softmax(-1).gather(2, y).squeeze(-1),
            (x, y) => x.gather(2, y).squeeze(-1) - x.logsumexp(-1),
        })
        {
            logits.grad!.zero_();
            var predicting = logits.narrow(1, 0, 8).to(ScalarType.Float32);
            if (temperature != 1.0) predicting = predicting / temperature;
            var expected = form(predicting, ids.narrow(1, 1, 8).unsqueeze(-1));
            expected.backward([upstream]);
            Assert.True(allclose(expected.detach(), fused.detach(), rtol: 1e-5, atol: 1e-4), $"log-probs differ by {(expected - fused).abs().max().item<float>()}");
            Assert.True(allclose(logits.grad!, fusedGrad, rtol: 1e-5, atol: 1e-6), $"gradients differ by {(logits.grad! - fusedGrad).abs().max().item<float>()}");
        }
        // The rows the zero upstream gradient reaches get no gradient at all.
        var predictingGrad = fusedGrad.narrow(1, 0, 8);
        var masked = (upstream == 0).unsqueeze(-1).expand_as(predictingGrad);
        Assert.Equal(0f, predictingGrad.masked_select(masked).abs().max().item<float>());
        Assert.True(predictingGrad.masked_select(masked.logical_not()).abs().max().item<float>() > 0);
    }

    [Fact]
    public void The_log_probs_are_the_log_softmax_at_the_targets_with_and_without_gradients()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(9);
        var logits = randn([2, 6, 30], generator: generator) * 40;
        var ids = randint(0, 30, [2, 6], generator: generator);
        var expected = Bits(logits.narrow(1, 0, 5).log_softmax(-1).gather(2, ids.narrow(1, 1, 5).unsqueeze(-1)).squeeze(-1));
        using (no_grad())
        {
            var lp = TokenLogprobs.Of(logits, ids);
            Assert.Equal(expected, Bits(lp));
            Assert.False(lp.requires_grad);
        }
        var withGrad = TokenLogprobs.Of(logits.clone().requires_grad_(), ids);
        Assert.True(withGrad.requires_grad);
        Assert.Equal(expected, Bits(withGrad.detach()));
    }
}
