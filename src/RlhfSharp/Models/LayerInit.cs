using TorchSharp.Modules;

namespace RlhfSharp.Models;

/// <summary>
/// The linear and embedding layers of every decoder body, built either as TorchSharp builds them (kaiming-uniform
/// weights, uniform biases, normal embeddings, drawn from torch's global generator) or, inside <see cref="Skipped"/>,
/// over uninitialised storage that a checkpoint load then overwrites element by element. The random init of a
/// 494M-parameter model is over ten seconds of serial generator work that the load throws away (issue #20: loading must
/// take about the time of reading the file). This is what <c>transformers</c>' <c>from_pretrained</c> does with
/// <c>no_init_weights</c> / the meta device (modeling_utils.py, v4.44); TorchSharp 0.107 has no <c>to_empty</c> off the
/// meta device and its default device is process-wide, so the layers are built from empty tensors instead.
/// Outside <see cref="Skipped"/> these calls are exactly <c>nn.Linear</c> and <c>nn.Embedding</c>: random-init models
/// draw the same numbers from the generator, in the same order, as before.
/// </summary>
public static class LayerInit
{
    // A model is built on one thread; the switch must not reach another thread's construction (parallel tests, serve).
    [ThreadStatic] static bool skip;

    /// <summary>Whether layers built now on this thread get no random init.</summary>
    public static bool IsSkipped => skip;

    /// <summary>
    /// Until disposed, layers built on this thread get no random init and draw nothing from the global generator.
    /// Only for modules whose every parameter is then filled from a file (the caller checks that it is).
    /// </summary>
    public static IDisposable Skipped()
    {
        bool outer = skip;
        skip = true;
        return new Restore(outer);
    }

    /// <summary><c>nn.Linear(inputSize, outputSize, hasBias, dtype)</c>; uninitialised inside <see cref="Skipped"/>.</summary>
    public static Linear Linear(long inputSize, long outputSize, bool hasBias, ScalarType? dtype)
    {
        if (!skip) return nn.Linear(inputSize, outputSize, hasBias: hasBias, dtype: dtype);
        var type = dtype ?? ScalarType.Float32;
        // TorchSharp's Linear(weight, bias) keeps the two parameters as they are: the same module the sized constructor
        // builds (weight then bias, both trainable), minus kaiming_uniform_ and uniform_.
        return nn.Linear(new Parameter(empty([outputSize, inputSize], type)), hasBias ? new Parameter(empty([outputSize], type)) : null);
    }

    /// <summary><c>nn.Embedding(count, width, dtype)</c>; uninitialised inside <see cref="Skipped"/>.</summary>
    public static Embedding Embedding(long count, long width, ScalarType? dtype)
    {
        if (!skip) return nn.Embedding(count, width, dtype: dtype);
        var type = dtype ?? ScalarType.Float32;
        // TorchSharp 0.107's Embedding is libtorch's native module, whose constructor always runs normal_ over the full
        // table in float32. Built with no rows, that is a no-op that draws nothing; the weight setter then swaps in the
        // real table for both the native forward and the managed parameter list. (Embedding_from_pretrained cannot be
        // used: it runs the full init, and its parameter list keeps that initialised table while forward reads the new one.)
        var embedding = nn.Embedding(0, width, dtype: type);
        var weight = new Parameter(empty([count, width], type));
        weight.DetachFromDisposeScope(); // the module owns it, as it owns the table its constructor made
        embedding.weight = weight;
        return embedding;
    }

    sealed class Restore(bool outer) : IDisposable
    {
        public void Dispose() => skip = outer;
    }
}
