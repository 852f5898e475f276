using RlhfSharp.Hub;

namespace RlhfSharp.Tests.Hub;

/// <summary>The HF_* variables read as huggingface_hub's constants.py reads them.</summary>
public sealed class HubSettingsTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-hubenv-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static HubSettings From(Dictionary<string, string> vars) => HubSettings.FromVariables(n => vars.GetValueOrDefault(n));

    [Fact]
    public void Defaults_are_the_public_hub_and_the_cache_under_HF_HOME()
    {
        var s = From(new() { ["HF_HOME"] = tmp });
        Assert.Equal("https://huggingface.co", s.Endpoint);
        Assert.Equal(Path.Combine(tmp, "hub"), s.CacheDir);
        Assert.Null(s.Token);
        Assert.False(s.Offline);
        Assert.Equal(Path.Combine(tmp, "xdg", "huggingface", "hub"), From(new() { ["XDG_CACHE_HOME"] = Path.Combine(tmp, "xdg") }).CacheDir);
    }

    [Fact]
    public void HF_HUB_CACHE_wins_over_HF_HOME_and_the_endpoint_loses_its_trailing_slash()
    {
        var s = From(new() { ["HF_HOME"] = tmp, ["HF_HUB_CACHE"] = "/data/hub", ["HF_ENDPOINT"] = "http://mirror.local:8080/" });
        Assert.Equal("/data/hub", s.CacheDir);
        Assert.Equal("http://mirror.local:8080", s.Endpoint);
        Assert.Equal("/old/cache", From(new() { ["HUGGINGFACE_HUB_CACHE"] = "/old/cache" }).CacheDir);
    }

    [Fact]
    public void The_token_comes_from_HF_TOKEN_else_the_login_file()
    {
        File.WriteAllText(Path.Combine(tmp, "token"), "hf_from_file\n");
        Assert.Equal("hf_from_file", From(new() { ["HF_HOME"] = tmp }).Token);
        Assert.Equal("hf_env", From(new() { ["HF_HOME"] = tmp, ["HF_TOKEN"] = "hf_env" }).Token);
    }

    [Theory]
    [InlineData("1", true)]
    [InlineData("true", true)]
    [InlineData("YES", true)]
    [InlineData("on", true)]
    [InlineData("0", false)]
    [InlineData("", false)]
    public void HF_HUB_OFFLINE_is_true_for_the_values_huggingface_hub_accepts(string value, bool offline) =>
        Assert.Equal(offline, From(new() { ["HF_HOME"] = tmp, ["HF_HUB_OFFLINE"] = value }).Offline);
}
