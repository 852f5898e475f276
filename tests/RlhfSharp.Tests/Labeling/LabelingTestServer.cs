using RlhfSharp.Labeling;
using RlhfSharp.Tests.Tokenization;

namespace RlhfSharp.Tests.Labeling;

/// <summary>A fresh label database and an in-process <c>rlhf label serve</c> on a free loopback port.</summary>
public sealed class LabelingTestServer : IAsyncDisposable
{
    readonly TempDir dir = new();
    public LabelStore Store { get; private set; } = null!;
    public LabelingServer Server { get; private set; } = null!;
    public HttpClient Http { get; private set; } = null!;
    public string DbPath => Path.Combine(dir.Path, "labels.db");
    public string Folder => dir.Path;

    public static async Task<LabelingTestServer> StartAsync(Action<LabelStore>? fill = null, Microsoft.Extensions.Logging.ILoggerProvider? log = null)
    {
        var t = new LabelingTestServer();
        t.Store = LabelStore.Open(t.DbPath);
        fill?.Invoke(t.Store);
        t.Server = await LabelingServer.StartAsync(t.Store, new LabelingOptions { Urls = "http://127.0.0.1:0" }, log);
        t.Http = new HttpClient { BaseAddress = new Uri(t.Server.Urls[0]), Timeout = TimeSpan.FromSeconds(30) };
        return t;
    }

    public LabelingClient Client(string token) => new(Http, token);

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        dir.Dispose();
    }

    /// <summary>A rank item with four responses whose intended order is the list order.</summary>
    public static void AddRankItems(LabelStore store, int count, int perItem = 3, string tag = "")
    {
        for (int i = 0; i < count; i++)
            store.AddItem($"Prompt {i}{tag}", [$"best {i}", $"good {i}", $"poor {i}", $"worst {i}"], LabelTask.Rank, perItem, "test");
    }
}
