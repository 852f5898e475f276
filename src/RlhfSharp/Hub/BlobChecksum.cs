using System.Security.Cryptography;
using System.Text;

namespace RlhfSharp.Hub;

/// <summary>
/// Checks a downloaded blob against its ETag. The Hub's ETag is the content's sha256 for LFS files (X-Linked-Etag)
/// and the git blob id, sha1("blob {size}\0" + content), for files kept in git; any other ETag (a proxy's own) cannot
/// be checked and is accepted, as huggingface_hub accepts it.
/// </summary>
public static class BlobChecksum
{
    /// <summary>The digest <paramref name="etag"/> claims, computed over <paramref name="path"/>; null when the ETag is not a digest.</summary>
    public static string? Compute(string path, string etag)
    {
        bool sha256 = etag.Length == 64 && etag.All(char.IsAsciiHexDigitLower);
        bool gitSha1 = etag.Length == 40 && etag.All(char.IsAsciiHexDigitLower);
        if (!sha256 && !gitSha1) return null;
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        using var hash = IncrementalHash.CreateHash(sha256 ? HashAlgorithmName.SHA256 : HashAlgorithmName.SHA1);
        if (gitSha1) hash.AppendData(Encoding.ASCII.GetBytes($"blob {stream.Length}\0"));
        var buffer = new byte[1 << 20];
        int n;
        while ((n = stream.Read(buffer)) > 0) hash.AppendData(buffer, 0, n);
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>Whether the file matches its ETag (true when the ETag is not a digest).</summary>
    public static bool Matches(string path, string etag) => Compute(path, etag) is not { } digest || digest == etag;
}
