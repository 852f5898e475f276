namespace RlhfSharp.Training;

/// <summary>
/// A hook for the fault tests (tests/RlhfSharp.Tests/Resilience): with <c>RLHF_FAULT_CHECKPOINT_SLEEP_MS=n</c> set, a
/// checkpoint write pauses n ms after its tensors are written and before it is published, so a test can SIGKILL the
/// process inside the write window deterministically instead of by luck. Unset (always, outside tests), it does nothing.
/// </summary>
public static class FaultInjection
{
    static readonly int CheckpointSleepMs =
        int.TryParse(Environment.GetEnvironmentVariable("RLHF_FAULT_CHECKPOINT_SLEEP_MS"), out int ms) ? ms : 0;

    public static void InsideCheckpointWrite()
    {
        if (CheckpointSleepMs > 0) Thread.Sleep(CheckpointSleepMs);
    }
}
