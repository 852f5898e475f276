using static TorchSharp.torch;

namespace RlhfSharp.Generation;

/// <summary>transformers' <c>TemperatureLogitsWarper</c>: scores divided by the temperature (sampling only).</summary>
public sealed class TemperatureWarper(double temperature) : ILogitsProcessor
{
    public Tensor Process(Tensor scores, DecodingState state) => scores / temperature;
}
