using static TorchSharp.torch;

namespace RlhfSharp.Checkpoints;

/// <summary>
/// Points a tensor at another's storage (<c>Tensor.set_</c>): the same memory, not a copy, so a write to one is seen by
/// the other. Used to make a parameter a view of a mapped checkpoint file and to let roles share one base.
/// </summary>
public static class StorageShare
{
    /// <summary>Makes <paramref name="target"/> use <paramref name="source"/>'s storage, offset, sizes and strides.</summary>
    public static void Set(Tensor target, Tensor source)
    {
        using var _ = no_grad();
        var alias = target.set_(source);
        // TorchSharp 0.107 returns a second wrapper of target's own native handle: disposing or finalizing it (a dispose
        // scope would) frees the tensor target still uses. Another version may return target itself or a new handle.
        if (ReferenceEquals(alias, target)) return;
        if (alias.Handle != target.Handle) alias.Dispose();
        else
        {
            alias.DetachFromDisposeScope();
            GC.SuppressFinalize(alias);
        }
    }
}
