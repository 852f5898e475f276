using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Common;

/// <summary>
/// The expert load of a stage's trained mixtures of experts over a span (a step of <see cref="Training.StepLoop"/>, a round
/// of <see cref="Training.RoundLoop"/>), written into its metrics row so router collapse shows: <c>expert_load/e</c> is
/// expert e's share of the real tokens' (token, slot) picks over every sparse layer (1/E each when balanced),
/// <c>expert_load_max</c>/<c>expert_load_min</c> the largest and smallest share any expert got in any one layer (a
/// collapsed layer shows as max → 1, min → 0), <c>aux_loss</c> the mean unweighted load-balancing loss the stage added
/// (only when the config asks for it). Only training forwards count (<see cref="RouterRecord"/>). The first trained
/// module with experts writes plain keys; another (PPO's critic) writes them under its name, <c>critic/expert_load/0</c>.
/// </summary>
public sealed class ExpertLoadLog
{
    readonly List<(string Prefix, RouterRecord Record, long[][] Load, double AuxSum, long AuxCount)> spans = [];

    ExpertLoadLog() { }

    /// <summary>Notes where every mixture-of-experts body among <paramref name="modules"/> stands now.</summary>
    public static ExpertLoadLog Begin(IReadOnlyDictionary<string, nn.Module> modules)
    {
        var log = new ExpertLoadLog();
        foreach (var (name, module) in modules)
        {
            var body = module as DecoderBody ?? module.modules().OfType<DecoderBody>().FirstOrDefault();
            if (body?.Router is not { } r) continue;
            string prefix = log.spans.Count == 0 ? "" : name + "/";
            log.spans.Add((prefix, r, r.Load.Select(l => (long[])l.Clone()).ToArray(), r.AuxSum, r.AuxCount));
        }
        return log;
    }

    /// <summary>Adds the load (and router loss) since <see cref="Begin"/> to <paramref name="row"/>; nothing when no training forward ran.</summary>
    public void WriteInto(IDictionary<string, double> row)
    {
        foreach (var (prefix, record, start, auxSum, auxCount) in spans)
        {
            var layers = record.Load.Select((l, i) => l.Select((v, e) => v - start[i][e]).ToArray()).ToArray();
            long total = layers.Sum(l => l.Sum());
            if (total == 0) continue;
            double max = 0, min = 1;
            foreach (var layer in layers.Where(l => l.Sum() > 0))
            {
                max = Math.Max(max, layer.Max() / (double)layer.Sum());
                min = Math.Min(min, layer.Min() / (double)layer.Sum());
            }
            row[prefix + "expert_load_max"] = max;
            row[prefix + "expert_load_min"] = min;
            for (int e = 0; e < layers[0].Length; e++) row[$"{prefix}expert_load/{e}"] = layers.Sum(l => l[e]) / (double)total;
            if (record.AuxCount > auxCount) row[prefix + "aux_loss"] = (record.AuxSum - auxSum) / (record.AuxCount - auxCount);
        }
    }
}
