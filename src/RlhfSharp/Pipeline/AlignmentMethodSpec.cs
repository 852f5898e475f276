namespace RlhfSharp.Pipeline;

/// <summary>One row of the <see cref="MethodTable"/>: how an alignment method is called, where it writes, and how it runs.</summary>
/// <param name="Command">The <c>rlhf</c> command (<c>reinforce-pp</c>).</param>
/// <param name="Stage">The run-folder stage it writes (<c>reinforce_pp</c>).</param>
/// <param name="DataParallel">Whether it trains data-parallel under <c>mpirun</c> (docs/distributed.md).</param>
/// <param name="Run">
/// Trains the method from the run's SFT checkpoint (else the base model) with its section of the config and its data.
/// </param>
public sealed record AlignmentMethodSpec(AlignmentMethod Method, string Command, string Stage, string Description, bool DataParallel,
    Func<IMethodConfigs, MethodData, RunStages, CancellationToken, Dictionary<string, double>> Run);
