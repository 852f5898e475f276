using RlhfSharp.Algorithms.Ilql;
using RlhfSharp.Data;
using RlhfSharp.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static RlhfSharp.Tests.Algorithms.LossFixtures;

namespace RlhfSharp.Tests.Algorithms;

/// <summary>
/// ILQL against fixtures/losses/pinned.json (generate_pinned.py, written from trlX@3340c2f <c>modeling_ilql.py</c> and
/// <c>accelerate_ilql_trainer.py</c>): the batch layout and reward normalisation, the loss and its parts, the expectile
/// regression, the Polyak sync of the target heads and the decoding shift.
/// </summary>
[LossFixtureTests]
public class PinnedIlqlTests
{
    static double[] Host(Tensor t) => t.detach().to_type(ScalarType.Float64).cpu().contiguous().data<double>().ToArray();

    [Fact]
    public void Batch_layout_and_reward_normalisation_match_trlx_make_experience()
    {
        using var _ = NewDisposeScope();
        var c = Case("ilql_make_experience");
        var tokens = Host(c.Input("tokens"));
        int width = (int)c.Input("tokens").shape[1];
        var promptLengths = Host(c.Input("prompt_lengths")).Select(x => (int)x).ToArray();
        var completionLengths = Host(c.Input("completion_lengths")).Select(x => (int)x).ToArray();
        var raw = Host(c.Input("raw_rewards"));
        var examples = Enumerable.Range(0, raw.Length).Select(i =>
        {
            var row = tokens.Skip(i * width).Select(x => (int)x).ToArray();
            return new ScoredExample(row[..promptLengths[i]], row[promptLengths[i]..(promptLengths[i] + completionLengths[i])], raw[i]);
        }).ToList();

        var normalised = IlqlLoss.NormalizeRewards(examples.Select(e => e.Reward).ToList());
        AssertClose(normalised, Flatten(c.Expected("normalized_returns")).Data, DoubleTolerance, "normalized_returns");
        var batch = IlqlBatch.Create(examples, normalised, padId: 0, dtype: ScalarType.Float64);
        AssertClose(batch.ActionIxs, c.Expected("actions_ixs"), 0, "actions_ixs");
        AssertClose(batch.StateIxs, c.Expected("states_ixs"), 0, "states_ixs");
        AssertClose(batch.Dones, c.Expected("dones"), 0, "dones");
        AssertClose(batch.Rewards, c.Expected("rewards"), DoubleTolerance, "rewards");
        // The actions are the completion tokens; trlX gathers them from the ids (padding indexes 0, masked out).
        var mask = batch.Dones.narrow(1, 0, batch.Actions.shape[1]);
        var fromIds = batch.InputIds.narrow(1, 1, batch.InputIds.shape[1] - 1).gather(1, batch.ActionIxs);
        Assert.Equal(Host(fromIds.to(float64) * mask), Host(batch.Actions.to(float64) * mask));
    }

    [Theory]
    [InlineData("ilql_loss_gamma0.99_tau0.7_cql0.1_awac1.0_beta0.0")]
    [InlineData("ilql_loss_gamma0.9_tau0.8_cql0.5_awac0.7_beta0.5")]
    public void Loss_and_its_parts_match_trlx_ilql_loss(string name)
    {
        using var _ = NewDisposeScope();
        var c = Case(name);
        var ids = c.Input("input_ids", ScalarType.Int64);
        var actionIxs = c.Input("actions_ixs", ScalarType.Int64);
        var actions = ids.narrow(1, 1, ids.shape[1] - 1).gather(1, actionIxs);
        AssertClose(actions, c.Expected("actions"), 0, "actions");
        var output = IlqlLoss.Compute(IlqlBatch.Select(c.Input("logits"), actionIxs), [c.Input("q0"), c.Input("q1")],
            [c.Input("target_q0"), c.Input("target_q1")], c.Input("vs"), actions, c.Input("rewards"), c.Input("dones"),
            c.Param("gamma"), c.Param("tau"), c.Param("cql_scale"), c.Param("awac_scale"), c.Param("beta"));
        foreach (var (key, value) in new[] { ("loss", output.Loss), ("loss_q", output.LossQ), ("loss_v", output.LossV), ("loss_cql", output.LossCql), ("loss_awac", output.LossAwac) })
            AssertClose(value, c.Expected(key).GetDouble(), DoubleTolerance, key);
        AssertClose(output.AwacWeight * output.Mask, c.Expected("awac_weight"), DoubleTolerance, "awac_weight");
    }

    [Fact]
    public void V_gets_its_gradient_from_the_expectile_term_alone_and_the_target_heads_none()
    {
        using var _ = NewDisposeScope();
        var c = Case("ilql_loss_gamma0.9_tau0.8_cql0.5_awac0.7_beta0.5");
        var ids = c.Input("input_ids", ScalarType.Int64);
        var actionIxs = c.Input("actions_ixs", ScalarType.Int64);
        var actions = ids.narrow(1, 1, ids.shape[1] - 1).gather(1, actionIxs);
        var vs = c.Input("vs").requires_grad_(true);
        var target = c.Input("target_q0").requires_grad_(true);
        var output = IlqlLoss.Compute(IlqlBatch.Select(c.Input("logits"), actionIxs), [c.Input("q0"), c.Input("q1")], [target, c.Input("target_q1")],
            vs, actions, c.Input("rewards"), c.Input("dones"), c.Param("gamma"), c.Param("tau"), c.Param("cql_scale"), c.Param("awac_scale"), c.Param("beta"));
        output.Loss.backward();
        // trlX detaches V(s') in the TD target and the AWAC weight, and never trains the target heads.
        Assert.Null(target.grad);
        using var vAlone = c.Input("vs").requires_grad_(true);
        var expectileOnly = IlqlLoss.Expectile(output.TargetQ, vAlone.narrow(1, 0, actions.shape[1]), output.Mask, c.Param("tau")) / output.Mask.sum();
        expectileOnly.backward();
        AssertClose(vs.grad!, Host(vAlone.grad!), DoubleTolerance, "dLoss/dV");
    }

    [Theory]
    [InlineData(0.7)]
    [InlineData(0.9)]
    public void Expectile_regression_matches_trlx_loss_v(double tau)
    {
        using var _ = NewDisposeScope();
        var c = Case($"ilql_expectile_tau{tau.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        var sum = IlqlLoss.Expectile(c.Input("target"), c.Input("v"), c.Input("mask"), c.Param("tau"));
        AssertClose(sum, c.Expected("masked_sum").GetDouble(), DoubleTolerance, "masked_sum");
    }

    internal static Parameter Named(nn.Module module, string name) => module.named_parameters().Single(p => p.name == name).parameter;

    /// <summary>Heads of hidden size 1 and vocab 2: each head's four tensors flatten to the fixture's ten numbers.</summary>
    static void SetFlat(IEnumerable<Parameter> parameters, double[] values)
    {
        using var _ = no_grad();
        int at = 0;
        foreach (var p in parameters)
        {
            int n = (int)p.numel();
            p.copy_(tensor(values[at..(at + n)], p.shape, float64));
            at += n;
        }
        Assert.Equal(values.Length, at);
    }

    [Theory]
    [InlineData(0.001)]
    [InlineData(0.3)]
    public void Polyak_sync_matches_trlx_sync_target_q_heads(double alpha)
    {
        using var _ = NewDisposeScope();
        var c = Case($"ilql_polyak_alpha{alpha.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        using var heads = new IlqlHeads(hiddenSize: 1, vocabSize: 2, twoQs: true, dtype: float64);
        var (q, target) = (Host(c.Input("q")), Host(c.Input("target")));
        for (int h = 0; h < 2; h++)
        {
            SetFlat(heads.q_heads[h].parameters(), q[(h * 10)..(h * 10 + 10)]);
            SetFlat(heads.target_q_heads[h].parameters(), target[(h * 10)..(h * 10 + 10)]);
        }
        double[] Targets() => heads.target_q_heads.SelectMany(t => t.parameters()).SelectMany(Host).ToArray();
        heads.SyncTargets(c.Param("alpha"));
        AssertClose(Targets(), Flatten(c.Expected("after_1")).Data, DoubleTolerance, "after_1");
        heads.SyncTargets(c.Param("alpha"));
        heads.SyncTargets(c.Param("alpha"));
        AssertClose(Targets(), Flatten(c.Expected("after_3")).Data, DoubleTolerance, "after_3");
        // The Q heads themselves are untouched, and the targets stay frozen.
        AssertClose(heads.q_heads.SelectMany(t => t.parameters()).SelectMany(Host).ToArray(), q, 0, "q");
        Assert.All(heads.target_q_heads.SelectMany(t => t.parameters()), p => Assert.False(p.requires_grad));
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(4.0)]
    public void Decoding_scores_match_trlx_generate(double beta)
    {
        using var _ = NewDisposeScope();
        var c = Case($"ilql_decoding_beta{beta.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture)}");
        var logits = c.Input("logits");
        int rows = (int)logits.shape[0], vocab = (int)logits.shape[1];
        var (tq0, tq1, v) = (Host(c.Input("target_q0")), Host(c.Input("target_q1")), Host(c.Input("v")));
        using var heads = new IlqlHeads(hiddenSize: 3, vocabSize: vocab, twoQs: true, dtype: float64);
        var decoding = new IlqlDecoding(heads, c.Param("beta"));
        var scores = new List<Tensor>();
        for (int i = 0; i < rows; i++)
        {
            // Output layers with zero weights: each head says its bias whatever the hidden state, so row i's Q and V are the fixture's.
            using (no_grad())
            {
                foreach (var (head, values) in new[] { (heads.target_q_heads[0], tq0), (heads.target_q_heads[1], tq1) })
                {
                    Named(head, "2.weight").zero_();
                    Named(head, "2.bias").copy_(tensor(values[(i * vocab)..((i + 1) * vocab)], float64));
                }
                Named(heads.v_head, "2.weight").zero_();
                Named(heads.v_head, "2.bias").fill_(v[i]);
            }
            scores.Add(decoding.Shift(logits.narrow(0, i, 1), randn(1, 3, float64)));
        }
        var all = cat(scores, 0);
        AssertClose(all, c.Expected("scores"), DoubleTolerance, "scores");
        AssertClose(all.argmax(-1), c.Expected("greedy"), 0, "greedy");
    }
}
