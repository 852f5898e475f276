using RlhfSharp.Checkpoints;

namespace RlhfSharp.Tests.Rewards;

/// <summary>The built-in stories260K model and tokenizer, loaded once for the reward tests.</summary>
internal static class BaseModel
{
    static readonly Lazy<PretrainedModel> loaded = new(() => PretrainedModel.Load("stories260k"));
    public static PretrainedModel Value => loaded.Value;
}
