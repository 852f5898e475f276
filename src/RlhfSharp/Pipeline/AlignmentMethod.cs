namespace RlhfSharp.Pipeline;

/// <summary>
/// A method <c>rlhf pipeline --algo</c> can train from the run's SFT model and reward model; its recipe and run-folder
/// name is the snake_case of the member (<c>reinforce_pp</c>, <c>online_dpo</c>).
/// </summary>
public enum AlignmentMethod
{
    /// <summary>PPO with a critic and a per-token KL penalty (InstructGPT).</summary>
    Ppo,
    /// <summary>DPO on the annotators' ranking pairs (cDPO when <c>dpo.loss</c> is cdpo).</summary>
    Dpo,
    Ipo,
    /// <summary>KTO on the best (desirable) and worst (undesirable) response of each ranking.</summary>
    Kto,
    Orpo,
    Simpo,
    Grpo,
    Rloo,
    ReinforcePp,
    ReinforcePpBaseline,
    Remax,
    /// <summary>Rejection-sampling fine-tuning (best-of-n distillation).</summary>
    Rs,
    OnlineDpo,
    /// <summary>ILQL: offline Q-learning on the rankings scored by rank; decodes with β·(Q − V) added (Snell et al. 2022).</summary>
    Ilql,
}
