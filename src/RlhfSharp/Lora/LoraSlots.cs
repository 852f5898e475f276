using TorchSharp.Modules;

namespace RlhfSharp.Lora;

/// <summary>
/// The LoRA adapters an <see cref="ILoraHost"/>'s projections may carry: none until <see cref="LoraModel.Attach(Models.DecoderBody, LoraConfig, bool)"/>
/// hands one over, then registered on the host as <c>&lt;projection&gt;_lora</c> (so its parameters follow the host's
/// own in <c>named_parameters</c>, as PEFT's keys expect). Every host (attention blocks, the MLP) attaches and applies
/// adapters through this one object.
/// </summary>
public sealed class LoraSlots
{
    readonly nn.Module host;
    readonly string hostName;
    readonly (string Name, Linear Projection)[] projections;
    readonly LoraAdapter?[] adapters;

    /// <param name="host">The module the adapters are registered on.</param>
    /// <param name="hostName">How errors name the host ("attention", "the MLP").</param>
    /// <param name="projections">The host's <c>nn.Linear</c> children that may take an adapter, by field name.</param>
    public LoraSlots(nn.Module host, string hostName, params (string Name, Linear Projection)[] projections)
    {
        this.host = host;
        this.hostName = hostName;
        this.projections = projections;
        adapters = new LoraAdapter?[projections.Length];
    }

    /// <summary>Adds <paramref name="adapter"/> to the projection named <paramref name="projection"/>.</summary>
    public void Attach(string projection, LoraAdapter adapter)
    {
        int i = Array.FindIndex(projections, p => p.Name == projection);
        if (i < 0) throw new ArgumentException($"{hostName} has no projection '{projection}'");
        adapters[i] = adapter;
        host.register_module(projection + "_lora", adapter);
    }

    /// <summary><paramref name="projection"/>(x), plus its adapter's low-rank update when one is attached.</summary>
    public Tensor Forward(Linear projection, Tensor x)
    {
        int i = Array.FindIndex(projections, p => ReferenceEquals(p.Projection, projection));
        var y = projection.forward(x);
        return adapters[i] is { } adapter ? adapter.Add(x, y) : y;
    }
}
