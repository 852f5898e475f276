namespace RlhfSharp.Tests;

/// <summary>
/// Tests that read process-wide state before and after an operation (torch's global generator, the peak resident
/// memory): they run alone, after the parallel collections, since another test seeding or drawing from that generator,
/// or allocating, in between would change what they read.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideStateCollection
{
    public const string Name = "process-wide state";
}
