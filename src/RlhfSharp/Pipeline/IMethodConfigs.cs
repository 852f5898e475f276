namespace RlhfSharp.Pipeline;

/// <summary>
/// The config sections the alignment methods read, shared by the stage commands' <see cref="StageRecipe"/> and
/// <c>rlhf pipeline</c>'s <see cref="PipelineConfig"/>, so one <see cref="MethodTable"/> serves both.
/// </summary>
public interface IMethodConfigs
{
    PpoConfig Ppo { get; }
    DpoConfig Dpo { get; }
    GroupRlConfig Grpo { get; }
    RejectionSamplingConfig Rs { get; }
    OnlineDpoConfig OnlineDpo { get; }
    IlqlConfig Ilql { get; }
    NlpoConfig Nlpo { get; }
    A2cConfig A2c { get; }
}
