using Microsoft.Playwright;
using RlhfSharp.Labeling;

namespace RlhfSharp.Tests.Labeling;

/// <summary>
/// The annotator's page in a real browser (Debian's chromium driven by Playwright; no browser is downloaded): sign in,
/// rank four responses by drag and drop and by keyboard, see the label counted, and the admin dashboard.
/// </summary>
public class LabelingBrowserTests
{
    const string Chromium = "/usr/bin/chromium";

    static async Task<IBrowser> LaunchAsync(IPlaywright playwright) => await playwright.Chromium.LaunchAsync(new()
    {
        ExecutablePath = Chromium,
        Headless = true,
        Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });

    public static string ScreenshotDir => Path.Combine(AppContext.BaseDirectory, "screenshots");

    [Fact]
    public async Task Annotator_signs_in_ranks_four_responses_and_sees_the_label_counted()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} not found: the browser test needs Debian's chromium ('apt-get install -y chromium'; .ci/run installs it).");
        await using var t = await LabelingTestServer.StartAsync(s =>
        {
            // The prompt and a response try to run script; they must show as text.
            s.AddItem("Tell a kind story. <script>window.__xss = 1</script>",
                ["best: Lily shared her toys.", "good: Tom said thank you.", "poor: The dog ran.", "worst: <img src=x onerror=\"window.__xss = 2\">"],
                LabelTask.Rank, 3, "test");
        });
        string token = t.Store.AddAnnotator("Ann <i>"), admin = t.Store.AddAnnotator("boss", admin: true);

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await LaunchAsync(playwright);
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1000, Height = 800 } });
        var errors = new List<string>();
        page.PageError += (_, e) => errors.Add(e);
        await page.GotoAsync(t.Server.Urls[0]);
        await page.FillAsync("#token", token);
        await page.ClickAsync("#signin-button");
        var cards = page.Locator("#ranking .card");
        await Assertions.Expect(cards).ToHaveCountAsync(4);
        await Assertions.Expect(page.Locator("#who")).ToHaveTextAsync("Ann <i>");
        await Assertions.Expect(page.Locator("#prompt")).ToHaveTextAsync("Tell a kind story. <script>window.__xss = 1</script>");
        await Assertions.Expect(page.Locator("#progress-text")).ToHaveTextAsync("0 of 1 done");

        async Task<string[]> Order() => (await cards.Locator("pre").AllTextContentsAsync()).Select(s => s.Split(':')[0]).ToArray();
        // Mouse: drag "best" onto the top card (dropping on a card's upper half puts it above).
        var best = cards.Filter(new() { HasText = "best:" });
        if ((await Order())[0] != "best") await best.DragToAsync(cards.First, new() { TargetPosition = new() { X = 20, Y = 5 } });
        Assert.Equal("best", (await Order())[0]);
        // Keyboard: focus a card by its number key and move it with the arrow keys until the order is best, good, poor, worst.
        string[] wanted = ["best", "good", "poor", "worst"];
        for (int target = 1; target < 4; target++)
        {
            int at = Array.IndexOf(await Order(), wanted[target]);
            await page.Keyboard.PressAsync((at + 1).ToString());
            for (; at > target; at--) await page.Keyboard.PressAsync("ArrowUp");
        }
        Assert.Equal(wanted, await Order());
        Assert.Equal(["1", "2", "3", "4"], await cards.Locator(".rank").AllTextContentsAsync());
        Directory.CreateDirectory(ScreenshotDir);
        await page.ScreenshotAsync(new() { Path = Path.Combine(ScreenshotDir, "label-rank.png"), FullPage = true });

        await page.Keyboard.PressAsync("Enter");
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("1");
        await Assertions.Expect(page.Locator("#progress-text")).ToHaveTextAsync("1 of 1 done");
        await Assertions.Expect(page.Locator("#empty")).ToBeVisibleAsync();
        await page.ScreenshotAsync(new() { Path = Path.Combine(ScreenshotDir, "label-done.png"), FullPage = true });

        var label = Assert.Single(t.Store.Labels());
        Assert.Equal(wanted, label.Body.Ranking!.Select(id => label.Text(id).Split(':')[0]).ToArray());
        Assert.Null(await page.EvaluateAsync<int?>("() => window.__xss ?? null"));
        Assert.Empty(errors);

        // The dashboard counts it.
        var dash = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1000, Height = 700 } });
        await dash.GotoAsync(t.Server.Urls[0].TrimEnd('/') + "/admin");
        await dash.FillAsync("#token", admin);
        await dash.ClickAsync("#signin-button");
        var row = dash.Locator("#dash-annotators tbody tr", new() { HasText = "Ann <i>" });
        await Assertions.Expect(row.Locator("td").Nth(1)).ToHaveTextAsync("1");
        await Assertions.Expect(dash.Locator("#dash-tasks tbody tr td").Nth(3)).ToHaveTextAsync("1");
        await dash.ScreenshotAsync(new() { Path = Path.Combine(ScreenshotDir, "label-dashboard.png"), FullPage = true });
    }
}
