using Microsoft.Playwright;
using RlhfSharp.Reporting;
using RlhfSharp.Tests.Labeling;

namespace RlhfSharp.Tests.Reporting;

/// <summary>
/// Issue 15: report.html of a run with six policies and the plots of its stages, opened in Debian's chromium; the
/// screenshot is kept for a person to look at and checked for what goes wrong on a page: a plot that does not load or
/// is shrunk unreadably, a caption that is a file name, intervals broken over two lines, a page wider than the screen.
/// </summary>
public sealed class ReportScreenshotTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-report-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static PolicyScore Score(double gold, double kl) => new()
    {
        GoldMean = gold, GoldCi95 = [gold - 0.031, gold + 0.032], ProxyMean = gold - 0.4, ProxyCi95 = [gold - 0.45, gold - 0.35],
        KlToSft = kl, KlCi95 = [kl * 0.9, kl * 1.1], Samples = 200, TrainSeconds = kl > 0 ? 123.4 : 0, TrainTokensPerSecond = 4567,
    };

    static List<IReadOnlyDictionary<string, double>> Rows(int steps, Func<int, double> f, string key) =>
        [.. Enumerable.Range(1, steps).Select(s => (IReadOnlyDictionary<string, double>)new Dictionary<string, double> { ["step"] = s, [key] = f(s), ["eval_" + key] = f(s) * 1.05 })];

    [SkippableFact]
    public async Task Report_shows_every_plot_readably_with_its_caption_and_intervals_on_one_line()
    {
        Prerequisite.Chromium();
        var policies = new Dictionary<string, PolicyScore>
        {
            ["base"] = Score(2.40, 0.93), ["sft"] = Score(2.62, 0), ["best_of_4"] = Score(2.73, 0.64),
            ["ppo"] = Score(2.78, 3.2), ["dpo"] = Score(2.74, 5.8), ["grpo"] = Score(2.81, 2.1),
        };
        var plots = new List<string> { Path.Combine(tmp, "gold_vs_kl.png") };
        Charts.GoldVsKl(policies, plots[0]);
        foreach (var (stage, file, key) in new[] { ("sft", "loss.png", "loss"), ("rm", "accuracy.png", "accuracy"), ("ppo", "reward.png", "reward"), ("ppo", "kl.png", "kl") })
        {
            string path = Path.Combine(Directory.CreateDirectory(Path.Combine(tmp, stage)).FullName, file);
            Charts.Lines(Rows(60, s => key == "accuracy" ? 0.5 + s / 200.0 : 3.0 / s, key), "step", [(key, "train " + key), ("eval_" + key, "eval " + key)], $"{stage}: {key}", key, path);
            plots.Add(path);
        }
        const string story = "Once upon a time, there was a little girl named Lily. She loved to play with her toys and share them with her friends in the park.";
        var samples = Enumerable.Range(0, 3).Select(i => new SampleRow($"Prompt {i}: Tom had a ball",
            policies.Keys.ToDictionary(p => p, p => (story, 2.5, 2.1)))).ToList();
        string report = Path.Combine(tmp, "report.html");
        HtmlReport.Write(report, "kinder-stories", policies, new Dictionary<string, double> { ["rm_accuracy"] = 0.573 }, plots, samples, "{ \"name\": \"kinder-stories\" }");

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = Prerequisite.ChromiumPath, Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1280, Height = 900 } });
        await page.GotoAsync(new Uri(report).AbsoluteUri);
        Directory.CreateDirectory(LabelingBrowserTests.ScreenshotDir);
        var png = await page.ScreenshotAsync(new() { Path = Path.Combine(LabelingBrowserTests.ScreenshotDir, "report.png"), FullPage = true });
        Assert.True(png.Length > 50_000, $"report.png: {png.Length} bytes");

        // Every plot decoded, and drawn at least 600 px wide (ScottPlot's text is unreadable much smaller).
        var images = await page.EvaluateAsync<double[][]>("() => [...document.images].map(i => [i.naturalWidth, i.getBoundingClientRect().width])");
        Assert.Equal(plots.Count, images.Length);
        Assert.All(images, i => { Assert.True(i[0] > 0, "a plot did not load"); Assert.True(i[1] >= 600, $"a plot is drawn {i[1]} px wide"); });
        // Each caption says what to read, not the file name.
        var captions = await page.Locator("figcaption").AllTextContentsAsync();
        Assert.Equal(plots.Count, captions.Count);
        Assert.All(captions, c => { Assert.DoesNotContain(".png", c); Assert.True(c.Length > 40, c); });
        // Intervals stay on one line (as the terminal table keeps them within 80 columns).
        var wrapped = await page.EvaluateAsync<string[]>("""
            () => [...document.querySelectorAll('td.num')].filter(td => td.textContent.startsWith('['))
                    .filter(td => { const r = document.createRange(); r.selectNodeContents(td); return r.getClientRects().length > 1; })
                    .map(td => td.textContent)
            """);
        Assert.True(wrapped.Length == 0, "wrapped intervals: " + string.Join(", ", wrapped));
        // The page itself does not scroll sideways; a wide samples table scrolls in its own box.
        int scrollWidth = await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth");
        Assert.True(scrollWidth <= 1280, $"the report is {scrollWidth}px wide");
    }
}
