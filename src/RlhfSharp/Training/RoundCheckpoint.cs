using static TorchSharp.torch;

namespace RlhfSharp.Training;

/// <summary>
/// Resume for the methods that sample, then train a fresh inner trainer each round (rejection sampling, online DPO):
/// a round boundary holds no optimizer state, so the policy's weights and the number of finished rounds are the whole
/// state. A round's prompts and samples come from seeds of its number, so a resumed run repeats nothing.
/// </summary>
public sealed class RoundCheckpoint(StageState? state, nn.Module policy)
{
    readonly Dictionary<string, nn.Module> modules = new() { ["policy"] = policy };
    static readonly Dictionary<string, Optimizer> NoOptimizers = [];

    /// <summary>The first round to run: 0, or the round after the last saved one, with the policy restored.</summary>
    public int Resume()
    {
        if (state?.SavedStep is not int saved) return 0;
        state.Load(modules, NoOptimizers);
        return saved;
    }

    /// <summary>Saves the policy after <paramref name="roundsDone"/> rounds (nothing without a stage state).</summary>
    public void Save(int roundsDone) => state?.Save(roundsDone, modules, NoOptimizers);
}
