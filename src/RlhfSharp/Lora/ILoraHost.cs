namespace RlhfSharp.Lora;

/// <summary>
/// A module owning projections that can take a LoRA adapter (an attention block, an MLP): <see cref="LoraModel.Attach(Models.DecoderBody, LoraConfig, bool)"/>
/// finds it by its module path and hands it the adapter for one of its <c>nn.Linear</c> children by name.
/// </summary>
public interface ILoraHost
{
    /// <summary>Adds <paramref name="adapter"/> to the projection named <paramref name="projection"/> (a child <c>Linear</c>).</summary>
    void AttachLora(string projection, LoraAdapter adapter);
}
