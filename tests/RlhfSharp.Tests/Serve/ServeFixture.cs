using RlhfSharp.Checkpoints;
using RlhfSharp.Server;

namespace RlhfSharp.Tests.Serve;

/// <summary>One in-process <c>rlhf serve</c> on a free loopback port with stories260k, shared by a test class.</summary>
public sealed class ServeFixture : IAsyncLifetime
{
    public const string ApiKey = "serve-test-key";
    public PretrainedModel Model { get; } = PretrainedModel.Load("stories260k");
    public OpenAiServer Server { get; private set; } = null!;
    public Uri BaseUri { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        // A wide batch window makes "requests sent together share a batch" hold on a loaded 2-core machine.
        Server = await OpenAiServer.StartAsync(Model, new ServerOptions { Urls = "http://127.0.0.1:0", ApiKey = ApiKey, BatchWindow = TimeSpan.FromMilliseconds(50) });
        BaseUri = new Uri(Server.Urls[0].TrimEnd('/') + "/v1/");
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        Model.Dispose();
    }
}
