namespace RlhfSharp.Tests.Tokenization;

/// <summary>A fresh folder under the system temp dir, deleted when the test ends.</summary>
internal sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("rlhfsharp-tok-").FullName;
    public void Dispose() => Directory.Delete(Path, recursive: true);
}
