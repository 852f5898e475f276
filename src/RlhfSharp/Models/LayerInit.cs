using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Models;

/// <summary>
/// The linear and embedding layers of every decoder body, built either as TorchSharp builds them (kaiming-uniform
/// weights, uniform biases, normal embeddings, drawn from torch's global generator) or, inside
/// <see cref="Skipped"/>, as uninitialised storage that a checkpoint load overwrites element by element. The random
/// init of a 494M-parameter model is several seconds of serial generator work that loading then throws away; this is
/// PyTorch's <c>torch.nn.utils.skip_init</c> / meta-device recipe, done with TorchSharp's parameter-taking
/// constructors because TorchSharp 0.107 has no <c>to_empty</c> for moving a module off the meta device (and its
/// default-device switch is process-wide, so parallel work on other threads would see it).
/// Outside <see cref="Skipped"/> these calls are exactly <c>nn.Linear</c> and <c>nn.Embedding</c>: random-init models
/// draw the same numbers from the generator in the same order as before.
/// </summary>
public static class LayerInit
{
    // A model is built on one thread; the flag must not leak into another thread's construction (parallel tests, serve).
    [ThreadStatic] static bool skip;

    /// <summary>Whether layers built now on this thread get no random init.</summary>
    public static bool IsSkipped => skip;

    /// <summary>
    /// Until disposed, layers built on this thread get no random init and leave the global generator untouched.
    /// Only for modules whose every parameter is then filled from a file (the caller checks that it is).
    /// </summary>
    public static IDisposable Skipped()
    {
        bool outer = skip;
        skip = true;
        return new Restore(outer);
    }

    /// <summary><c>nn.Linear(inputSize, outputSize, hasBias, dtype)</c>, uninitialised inside <see cref="Skipped"/>.</summary>
    public static Linear Linear(long inputSize, long outputSize, bool hasBias = true, ScalarType? dtype = null)
    {
        if (!skip) return nn.Linear(inputSize, outputSize, hasBias: hasBias, dtype: dtype);
        var type = dtype ?? ScalarType.Float32;
        return nn.Linear(new Parameter(empty([outputSize, inputSize], type)), hasBias ? new Parameter(empty([outputSize], type)) : null);
    }

    /// <summary><c>nn.Embedding(count, width, dtype)</c>, uninitialised inside <see cref="Skipped"/>.</summary>
    public static Embedding Embedding(long count, long width, ScalarType? dtype = null)
    {
        if (!skip) return nn.Embedding(count, width, dtype: dtype);
        var type = dtype ?? ScalarType.Float32;
        // from_pretrained keeps the given tensor as the weight (no copy, no init); freeze: false keeps it trainable, as
        // nn.Embedding's is. The explicit dtype stops TorchSharp from moving it to the default dtype.
        return nn.Embedding_from_pretrained(empty([count, width], type), freeze: false, dtype: type);
    }

    sealed class Restore(bool outer) : IDisposable
    {
        public void Dispose() => skip = outer;
    }
}
