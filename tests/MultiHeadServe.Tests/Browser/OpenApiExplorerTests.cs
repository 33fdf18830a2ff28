using System.Text.Json;
using Microsoft.Playwright;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Browser;

/// <summary>
/// The OpenAPI explorer as a person uses it: a real Chromium opens /swagger, picks a demo model's example,
/// presses "Try it out" and "Execute", and sees the combined answer. The service runs on a real Kestrel port.
/// </summary>
[TakesAbout(seconds: 58)]
public sealed class OpenApiExplorerTests
{
    private const string Chromium = "/usr/bin/chromium";

    [Theory]
    [InlineData("ranking", "ranking-keys", "\"click\"")]
    [InlineData("shapes", "shapes-image", "\"bbox\"")]
    public async Task TryingADemoExampleInTheExplorerReturnsEveryHead(string model, string example, string expectedInBody)
    {
        Assert.True(File.Exists(Chromium), $"The browser test needs Chromium at {Chromium} (Debian: apt-get install chromium).");
        await using var app = new ServeFactory();
        app.UseKestrel(0);
        app.StartServer();
        var baseAddress = app.ClientOptions.BaseAddress;

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
        var page = await browser.NewPageAsync();

        await page.GotoAsync(new Uri(baseAddress, "/swagger/index.html").ToString());
        var operation = page.Locator("#operations-Predict-Predict");
        await operation.Locator(".opblock-summary").ClickAsync();
        await operation.Locator("button.try-out__btn").ClickAsync();
        await operation.Locator("tr[data-param-name='model'] select").SelectOptionAsync(model);
        await operation.Locator(".opblock-section-request-body select.examples-select-element").SelectOptionAsync(example);
        await operation.Locator("button.execute").ClickAsync();
        var status = operation.Locator(".live-responses-table td.response-col_status:not(.col_header)");
        await status.WaitForAsync(new() { Timeout = 30_000 });
        var body = await operation.Locator(".live-responses-table .response-col_description pre").First.InnerTextAsync();
        await page.ScreenshotAsync(new() { Path = TestArtifacts.PathOf($"swagger-{model}.png"), FullPage = true });

        Assert.Equal("200", (await status.InnerTextAsync()).Trim());
        Assert.Contains(expectedInBody, body, StringComparison.Ordinal);
    }

    /// <summary>
    /// Every request example in the explorer, executed unchanged with the model it names (x-model) and, on the
    /// one-head route, that model's first head, answers 2xx; a predict example's answer has every served head. The
    /// demo models as the README's command serves them, objects' ResNet-18 among them: its 224x224 image is an
    /// example the page can show (a JPEG), and its tensor, which would stall the page, is described instead.
    /// </summary>
    [Fact]
    public async Task EveryExampleInTheExplorerSucceedsUnchanged()
    {
        await using var app = new ServeFactory(new Dictionary<string, string?>
        {
            ["ModelRepository:Only:0"] = "shapes",
            ["ModelRepository:Only:1"] = "ranking",
            ["ModelRepository:Only:2"] = "ranking-mtl",
            ["ModelRepository:Only:3"] = "conversion",
            ["ModelRepository:Only:4"] = "objects",
        });
        app.UseKestrel(0);
        app.StartServer();
        using var http = app.CreateClient();
        var document = await (await http.GetAsync("/swagger/v1/swagger.json")).JsonAsync();
        foreach (var example in document.GetProperty("components").GetProperty("examples").EnumerateObject())
        {
            Assert.True(example.Value.GetRawText().Length <= 160 * 1024, $"The example {example.Name} is {example.Value.GetRawText().Length:N0} characters: too large for the page to show.");
        }

        Assert.StartsWith("iVBORw0KGgo", document.GetProperty("components").GetProperty("examples").GetProperty("shapes-image").GetProperty("value").GetProperty("image").GetString(), StringComparison.Ordinal);
        Assert.StartsWith("/9j/", document.GetProperty("components").GetProperty("examples").GetProperty("objects-image").GetProperty("value").GetProperty("image").GetString(), StringComparison.Ordinal);
        Assert.False(document.GetProperty("components").GetProperty("examples").TryGetProperty("objects-tensor", out var _));
        Assert.Contains("No example here for objects (1x3x224x224", document.GetProperty("paths").GetProperty("/v2/models/{model}/infer").GetProperty("post").GetProperty("description").GetString(), StringComparison.Ordinal);
        var models = (await (await http.GetAsync("/v1/models")).JsonAsync()).GetProperty("models").EnumerateArray()
            .ToDictionary(m => m.GetProperty("name").GetString()!, m => m.GetProperty("heads").EnumerateArray()
                .Where(h => h.GetProperty("served").GetBoolean()).Select(h => h.GetProperty("name").GetString()!).ToList());

        var operations = new List<(string Path, string Method, List<JsonProperty> Examples)>();
        foreach (var path in document.GetProperty("paths").EnumerateObject())
        {
            foreach (var method in path.Value.EnumerateObject())
            {
                if (method.Value.TryGetProperty("requestBody", out var body) &&
                    body.GetProperty("content").GetProperty("application/json").TryGetProperty("examples", out var examples))
                {
                    operations.Add((path.Name, method.Name, examples.EnumerateObject().ToList()));
                }
            }
        }

        var (playwright, browser) = await Infrastructure.Chromium.LaunchAsync();
        using var _ = playwright;
        await using var __ = browser;
        var executed = new List<string>();
        // Two people at once, each in a browser context (and renderer) of their own, each trying half the operations:
        // Swagger UI's rendering is most of the time (about 0.9 s an example) and one renderer uses one core.
        var pages = await Task.WhenAll(Enumerable.Range(0, 2).Select(async person =>
        {
            var context = await browser.NewContextAsync(new() { ViewportSize = new() { Width = 1400, Height = 1000 } });
            var page = await context.NewPageAsync();
            await page.GotoAsync(new Uri(app.ClientOptions.BaseAddress, "/swagger/index.html").ToString());
            foreach (var (path, method, examples) in operations.Where((_, i) => i % 2 == person))
            {
                var operation = page.Locator($".opblock-{method}:has(.opblock-summary-path[data-path='{path}'])");
                await operation.Locator(".opblock-summary").First.ClickAsync();
                await operation.Locator("button.try-out__btn").ClickAsync();
                foreach (var example in examples)
                {
                    var model = example.Value.Resolved(document).GetProperty("x-model").GetString()!;
                    await operation.Locator("tr[data-param-name='model'] select").SelectOptionAsync(model);
                    if (await operation.Locator("tr[data-param-name='head'] select").CountAsync() > 0)
                    {
                        await operation.Locator("tr[data-param-name='head'] select").SelectOptionAsync(models[model][0]);
                    }

                    if (path.Contains("{version}", StringComparison.Ordinal))
                    {
                        await operation.Locator("tr[data-param-name='version'][data-param-in='path'] input").FillAsync("1");
                    }

                    await operation.Locator(".opblock-section-request-body select.examples-select-element").SelectOptionAsync(example.Name);
                    if (await operation.Locator("button.btn-clear").CountAsync() > 0)
                    {
                        await operation.Locator("button.btn-clear").ClickAsync();
                    }

                    await operation.Locator("button.execute").ClickAsync();
                    var status = operation.Locator(".live-responses-table td.response-col_status:not(.col_header)");
                    await status.WaitForAsync(new() { Timeout = 30_000 });
                    var code = (await status.InnerTextAsync()).Trim();
                    var answer = await operation.Locator(".live-responses-table .response-col_description pre").First.InnerTextAsync();
                    Assert.True(code.StartsWith('2'), $"{method.ToUpperInvariant()} {path} with example {example.Name} (model {model}) answered {code}: {answer}");
                    if (path.EndsWith("}/predict", StringComparison.Ordinal) && !path.Contains("/heads/", StringComparison.Ordinal))
                    {
                        foreach (var head in models[model])
                        {
                            Assert.Contains($"\"{head}\"", answer, StringComparison.Ordinal);
                        }
                    }

                    lock (executed)
                    {
                        executed.Add($"{path} {example.Name}");
                    }
                }

                await operation.Locator(".opblock-summary").First.ClickAsync();
            }

            return page;
        }));

        await pages[0].ScreenshotAsync(new() { Path = TestArtifacts.PathOf("swagger-every-example.png") });
        Assert.Contains(executed, e => e.StartsWith("/v1/models/{model}/evaluate ", StringComparison.Ordinal));
        Assert.Contains(executed, e => e.StartsWith("/v2/models/{model}/infer ", StringComparison.Ordinal));
        Assert.True(executed.Count >= 20, $"Only {executed.Count} examples executed: {string.Join("; ", executed)}");
    }

    [Fact]
    public async Task UploadingAnImageFileInTheExplorerReturnsEveryHead()
    {
        Assert.True(File.Exists(Chromium), $"The browser test needs Chromium at {Chromium} (Debian: apt-get install chromium).");
        await using var app = new ServeFactory();
        app.UseKestrel(0);
        app.StartServer();

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
        var page = await browser.NewPageAsync();

        await page.GotoAsync(new Uri(app.ClientOptions.BaseAddress, "/swagger/index.html").ToString());
        var operation = page.Locator("#operations-Predict-Predict");
        await operation.Locator(".opblock-summary").ClickAsync();
        await operation.Locator("button.try-out__btn").ClickAsync();
        await operation.Locator("tr[data-param-name='model'] select").SelectOptionAsync("shapes");
        await operation.Locator(".opblock-section-request-body select.content-type").SelectOptionAsync("image/png");
        await operation.Locator(".opblock-section-request-body input[type=file]").SetInputFilesAsync(
            Path.Combine(RepositoryPaths.Model("shapes"), "samples", "triangle.png"));
        await operation.Locator("button.execute").ClickAsync();
        var status = operation.Locator(".live-responses-table td.response-col_status:not(.col_header)");
        await status.WaitForAsync(new() { Timeout = 30_000 });
        var body = await operation.Locator(".live-responses-table .response-col_description pre").First.InnerTextAsync();
        await page.ScreenshotAsync(new() { Path = TestArtifacts.PathOf("swagger-upload.png"), FullPage = true });

        Assert.Equal("200", (await status.InnerTextAsync()).Trim());
        Assert.Contains("\"triangle\"", body, StringComparison.Ordinal);
        Assert.Contains("\"bbox\"", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheOpenApiDocumentDescribesEveryEndpointAndErrorStatus()
    {
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        var document = await (await client.GetAsync("/swagger/v1/swagger.json")).JsonAsync();

        var paths = document.GetProperty("paths");
        foreach (var path in new[] { "/v1/models", "/v1/models/{model}", "/v1/models/{model}/predict", "/v1/models/{model}/heads/{head}/predict", "/healthz", "/readyz", "/metrics" })
        {
            Assert.True(paths.TryGetProperty(path, out _), $"{path} is missing from the OpenAPI document");
        }

        var predict = paths.GetProperty("/v1/models/{model}/predict").GetProperty("post");
        foreach (var status in new[] { "200", "400", "404", "413", "415", "429", "503" })
        {
            Assert.True(predict.GetProperty("responses").TryGetProperty(status, out _), $"predict does not document {status}");
        }

        var examples = predict.GetProperty("requestBody").GetProperty("content").GetProperty("application/json").GetProperty("examples");
        Assert.True(examples.TryGetProperty("shapes-image", out _));
        Assert.True(examples.TryGetProperty("ranking-keys", out _));
    }

    [Fact]
    public async Task ThePredictRoutesDocumentImageUploadsAndEvaluateDoesNot()
    {
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        var paths = (await (await client.GetAsync("/swagger/v1/swagger.json")).JsonAsync()).GetProperty("paths");

        string[] uploads = ["image/png", "image/jpeg", "image/webp", "multipart/form-data"];
        foreach (var path in new[] { "/v1/models/{model}/predict", "/v1/models/{model}/heads/{head}/predict" })
        {
            var content = paths.GetProperty(path).GetProperty("post").GetProperty("requestBody").GetProperty("content");
            Assert.Equal(["application/json", .. uploads], content.EnumerateObject().Select(c => c.Name));
            Assert.Equal("binary", content.GetProperty("image/png").GetProperty("schema").GetProperty("format").GetString());
            var files = content.GetProperty("multipart/form-data").GetProperty("schema").GetProperty("properties").GetProperty("image");
            Assert.Equal("binary", files.GetProperty("items").GetProperty("format").GetString());
        }

        var evaluate = paths.GetProperty("/v1/models/{model}/evaluate").GetProperty("post").GetProperty("requestBody").GetProperty("content");
        Assert.Equal(["application/json"], evaluate.EnumerateObject().Select(c => c.Name));
    }
}
