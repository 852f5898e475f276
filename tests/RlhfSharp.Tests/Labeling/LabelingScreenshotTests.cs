using Microsoft.Playwright;
using RlhfSharp.Labeling;

namespace RlhfSharp.Tests.Labeling;

/// <summary>
/// Issue 15: a screenshot of each labelling task, on a laptop and on a phone, kept in <c>bin/…/screenshots</c> for a
/// person to look at, and checked for what a screenshot shows going wrong: a page wider than the screen, text cut off,
/// controls out of reach.
/// </summary>
public class LabelingScreenshotTests
{
    public static string ScreenshotDir => LabelingBrowserTests.ScreenshotDir;

    const string Long = "Once upon a time there was a little girl called Lily who loved to share her toys with everyone in the park, and one sunny day she met a sad boy.";

    [SkippableTheory]
    [InlineData(1000, 800)]
    [InlineData(390, 844)]
    public async Task Each_task_fits_the_screen_with_all_its_text_and_controls(int width, int height)
    {
        Prerequisite.Chromium();
        await using var t = await LabelingTestServer.StartAsync(s =>
        {
            s.AddItem("Tell a kind story.", [Long, "Tom said thank you.", "The dog ran to the big red ball.", "Sam cried."], LabelTask.Rank, 1, "test");
            s.AddItem("Which is kinder?", [Long, "Keep the cake."], LabelTask.Pair, 1, "test");
            s.AddItem("Rate these stories.", [Long, "A sad story."], LabelTask.Rate, 1, "test");
            s.AddItem("Write a story about a cat.", ["A cat sat on the mat."], LabelTask.Demonstrate, 1, "test");
        });
        string token = t.Store.AddAnnotator("Ann");
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = Prerequisite.ChromiumPath, Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = width, Height = height } });
        await page.GotoAsync(t.Server.Urls[0]);
        await page.FillAsync("#token", token);
        await page.ClickAsync("#signin-button");
        Directory.CreateDirectory(ScreenshotDir);
        foreach (var task in new[] { "rank", "pair", "rate", "demo" })
        {
            await page.ClickAsync($"#tasks button[data-task='{task}']");
            await Assertions.Expect(page.Locator("#task-title")).ToContainTextAsync("showing");
            await Assertions.Expect(page.Locator("#task-area > *").First).ToBeVisibleAsync();
            string file = Path.Combine(ScreenshotDir, $"label-{task}-{width}.png");
            var png = await page.ScreenshotAsync(new() { Path = file, FullPage = true });
            Assert.True(png.Length > 5_000, $"{file}: {png.Length} bytes");

            // Nothing wider than the screen (a sideways scroll on a phone hides half of a pair).
            int scrollWidth = await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth");
            Assert.True(scrollWidth <= width, $"{task} at {width}px: the page is {scrollWidth}px wide");
            // Every response's text is shown whole (wrapped, not cut off or scrolled inside its card).
            var clipped = await page.EvaluateAsync<string[]>("""
                () => [...document.querySelectorAll('#task-area pre, #prompt')]
                        .filter(e => e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1)
                        .map(e => e.textContent.slice(0, 30))
                """);
            Assert.True(clipped.Length == 0, $"{task} at {width}px: cut off: {string.Join(" | ", clipped)}");
            // The controls are on the page and not covered by anything else.
            foreach (var selector in new[] { "#submit", "#skip", "#undo", "#signout" })
            {
                bool onTop = await page.EvaluateAsync<bool>("""
                    (s) => { const e = document.querySelector(s); e.scrollIntoView({block: 'center'}); const b = e.getBoundingClientRect();
                             return b.width > 0 && b.left >= 0 && b.right <= innerWidth && document.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2) === e; }
                    """, selector);
                Assert.True(onTop, $"{task} at {width}px: {selector} is hidden, off screen or covered");
            }
        }
        if (width < 600)
        {
            // On a phone the pair stacks: each response gets the full width instead of a cramped half.
            await page.ClickAsync("#tasks button[data-task='pair']");
            // The item renders after the click's request returns: wait for both cards (a loaded machine is slow to).
            await Assertions.Expect(page.Locator("#pair .card")).ToHaveCountAsync(2);
            var boxes = await Task.WhenAll((await page.Locator("#pair .card").AllAsync()).Select(c => c.BoundingBoxAsync()));
            Assert.True(boxes[1]!.Y >= boxes[0]!.Y + boxes[0]!.Height, "the pair's cards sit side by side on a phone");
        }
    }
}
