using System.Net;
using System.Net.Sockets;
using RlhfSharp.Labeling;
using RlhfSharp.Tests.Cli;

namespace RlhfSharp.Tests.Labeling;

/// <summary>Issue 15, <c>rlhf label simulate</c>: it says why it gave fewer labels than there are items, and a server that is not there is a plain message.</summary>
public class LabelSimulateCliTests
{
    [Fact]
    public async Task Zero_labels_are_explained_by_the_places_other_annotators_hold_and_the_demo_items()
    {
        await using var t = await LabelingTestServer.StartAsync(s =>
        {
            LabelingTestServer.AddRankItems(s, 2, perItem: 1);
            s.AddItem("Write a story", [], LabelTask.Demonstrate, 1, "test");
        });
        // A person opened both rank items in the browser and walked away: their assignments hold the only places.
        var human = t.Store.Authenticate(t.Store.AddAnnotator("human"))!;
        var human2 = t.Store.Authenticate(t.Store.AddAnnotator("human2"))!;
        Assert.Equal("Prompt 0", t.Store.Next(human, LabelTask.Rank)!.Prompt);
        Assert.Equal("Prompt 1", t.Store.Next(human2, LabelTask.Rank)!.Prompt);
        string token = t.Store.AddAnnotator("sim");

        var r = await Task.Run(() => RlhfProcess.Run("label", "simulate", "--url", t.Server.Urls[0], "--token", token));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("annotator 1: 0 labels: 2 item(s) still need labels, but other annotators' open assignments hold their places", r.Stderr);
        Assert.Contains("1 demo item(s) need a writer", r.Stderr);
        Assert.Contains("0 labels from 1 simulated annotators", r.Stdout);
    }

    [Fact]
    public void A_server_that_is_not_running_is_named_with_what_to_do()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop(); // nothing listens there now

        var r = RlhfProcess.Run("label", "simulate", "--url", $"http://127.0.0.1:{port}", "--token", "rlhf_x");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains($"cannot reach the labelling server at http://127.0.0.1:{port}", r.Stderr);
        Assert.Contains("rlhf label serve --db FILE", r.Stderr);
        Assert.DoesNotContain("HttpRequestException", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);

        var noScheme = RlhfProcess.Run("label", "simulate", "--url", $"127.0.0.1:{port}", "--token", "rlhf_x");
        Assert.NotEqual(0, noScheme.ExitCode);
        Assert.Contains($"e.g. http://127.0.0.1:{port}", noScheme.Stderr);
    }
}
