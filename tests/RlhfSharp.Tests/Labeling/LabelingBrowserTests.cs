using Microsoft.Playwright;
using RlhfSharp.Labeling;

namespace RlhfSharp.Tests.Labeling;

/// <summary>
/// The annotator's page in a real browser (Debian's chromium driven by Playwright; no browser is downloaded): sign in,
/// rank four responses by drag and drop and by keyboard, see the label counted, and the admin dashboard.
/// </summary>
public class LabelingBrowserTests
{
    const string Chromium = Prerequisite.ChromiumPath;

    static async Task<IBrowser> LaunchAsync(IPlaywright playwright) => await playwright.Chromium.LaunchAsync(new()
    {
        ExecutablePath = Chromium,
        Headless = true,
        Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });

    public static string ScreenshotDir => Path.Combine(AppContext.BaseDirectory, "screenshots");

    [SkippableFact]
    public async Task Annotator_signs_in_ranks_four_responses_and_sees_the_label_counted()
    {
        Prerequisite.Chromium();
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

    [SkippableFact]
    public async Task Pair_rating_and_demonstration_tasks_work_from_the_keyboard_alone()
    {
        Prerequisite.Chromium();
        await using var t = await LabelingTestServer.StartAsync(s =>
        {
            s.AddItem("Which is kinder?", ["Share the cake.", "Keep the cake."], LabelTask.Pair, 1, "test");
            s.AddItem("Rate this", ["A fine story."], LabelTask.Rate, 1, "test");
            s.AddItem("Write a story about a cat", ["A cat sat."], LabelTask.Demonstrate, 1, "test");
        });
        string token = t.Store.AddAnnotator("kb");
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await LaunchAsync(playwright);
        var page = await browser.NewPageAsync();
        await page.GotoAsync(t.Server.Urls[0]);
        await page.FocusAsync("#token");
        await page.Keyboard.TypeAsync(token);
        await page.Keyboard.PressAsync("Enter");

        // Pair: the number key picks, Enter submits.
        await Assertions.Expect(page.Locator("#task-title")).ToHaveTextAsync("Choose the better response");
        var pair = await page.Locator("#pair .card pre").AllTextContentsAsync();
        await page.Keyboard.PressAsync((pair.ToList().IndexOf("Share the cake.") + 1).ToString());
        await page.Keyboard.PressAsync("Enter");
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("1");

        // Rate: the response is highlighted, a digit rates it, Tab to its scale and on to a flag, Space ticks it, Enter submits.
        await Assertions.Expect(page.Locator("#task-title")).ToHaveTextAsync("Rate the responses");
        await page.Keyboard.PressAsync("6");
        await page.Keyboard.PressAsync("Tab");
        await page.Keyboard.PressAsync("Tab");
        await page.Keyboard.PressAsync("Space");
        await page.Locator("#submit").FocusAsync();
        await page.Keyboard.PressAsync("Enter");
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("2");

        // Demonstration: the draft is there to edit; Ctrl+Enter submits.
        await Assertions.Expect(page.Locator("#demonstration")).ToHaveValueAsync("A cat sat.");
        await page.Keyboard.PressAsync("End");
        await page.Keyboard.TypeAsync(" Then it purred.");
        await page.Keyboard.PressAsync("Control+Enter");
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("3");
        await Assertions.Expect(page.Locator("#empty")).ToBeVisibleAsync();

        var labels = t.Store.Labels();
        Assert.Equal("Share the cake.", labels[0].Text(labels[0].Body.Choice!.Value));
        var rating = Assert.Single(labels[1].Body.Ratings!);
        Assert.Equal(6, rating.Quality);
        Assert.Equal(["harmful"], rating.Flags!);
        Assert.Equal("A cat sat. Then it purred.", labels[2].Body.Demonstration);
    }
}
