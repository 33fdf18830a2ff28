using System.Net;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Api;

public sealed class ModelsApiTests
{
    [Fact]
    public async Task ListsEveryRepositoryModelWithTheSessionsRealMetadata()
    {
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        var body = await (await client.GetAsync("/v1/models")).JsonAsync();

        var models = body.GetProperty("models").EnumerateArray().ToDictionary(m => m.GetProperty("name").GetString()!);
        // Every model the test app is told to load (ServeFactory's ModelRepository:Only), each a repository folder.
        var expected = app.Settings.Where(s => s.Key.StartsWith("ModelRepository:Only:", StringComparison.Ordinal)).Select(s => s.Value).Order().ToList();
        Assert.All(expected, name => Assert.True(File.Exists(Path.Combine(RepositoryPaths.Models, name!, "model.json"))));
        Assert.Equal(expected, models.Keys.Order());
        var shapes = models["shapes"];
        var input = Assert.Single(shapes.GetProperty("inputs").EnumerateArray());
        Assert.Equal("image", input.GetProperty("name").GetString());
        Assert.Equal("float32", input.GetProperty("dataType").GetString());
        Assert.Equal([-1, 3, 64, 64], input.GetProperty("shape").Numbers());
        Assert.Equal(["class_logits", "bbox"], shapes.GetProperty("outputs").EnumerateArray().Select(o => o.GetProperty("name").GetString()));
        var ranking = models["ranking"];
        Assert.Equal(["click_logit", "dwell", "revenue"], ranking.GetProperty("outputs").EnumerateArray().Select(o => o.GetProperty("name").GetString()));
        Assert.All(models.Values, m => Assert.True(m.GetProperty("ready").GetBoolean()));
        Assert.All(models.Values, m => Assert.Equal("CPUExecutionProvider", m.GetProperty("executionProvider").GetString()));
    }

    [Fact]
    public async Task OneModelComesWithItsHeadsLabelsAndEffectiveManifest()
    {
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        var body = await (await client.GetAsync("/v1/models/shapes")).JsonAsync();

        var heads = body.GetProperty("model").GetProperty("heads").EnumerateArray().ToList();
        Assert.Equal(["class", "bbox"], heads.Select(h => h.GetProperty("name").GetString()));
        Assert.Equal(File.ReadAllLines(Path.Combine(RepositoryPaths.Model("shapes"), "labels.txt")).Where(l => l.Length > 0),
            heads[0].GetProperty("labels").EnumerateArray().Select(l => l.GetString()));
        Assert.Equal("image", body.GetProperty("manifest").GetProperty("features").GetProperty("source").GetString());
    }

    [Fact]
    public async Task UnknownModelIsA404ProblemListingTheServedModels()
    {
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        var response = await client.GetAsync("/v1/models/nope");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.JsonAsync();
        Assert.Contains("shapes", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnotherMethodOnTheModelRoutesIsA405ProblemNamingTheAllowedOne()
    {
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        foreach (var (method, path, allowed) in new[]
                 {
                     (HttpMethod.Patch, "/v1/models", "GET"), (HttpMethod.Post, "/v1/models", "GET"), (HttpMethod.Delete, "/v1/models/", "GET"),
                     (HttpMethod.Put, "/v1/models/shapes", "GET"), (HttpMethod.Get, "/v1/models/shapes/predict", "POST"),
                 })
        {
            var response = await client.SendAsync(new HttpRequestMessage(method, path));

            Assert.True(HttpStatusCode.MethodNotAllowed == response.StatusCode, $"{method} {path}: {(int)response.StatusCode}");
            Assert.Equal([allowed], response.Content.Headers.Allow);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }

        Assert.Equal(HttpStatusCode.NotFound, (await client.PostAsync("/v1/nothing", null)).StatusCode);
    }

    [Fact]
    public async Task HealthAndReadinessReportLoadedWarmModelsAndAReachableStore()
    {
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        var live = await client.GetAsync("/healthz");
        var ready = await client.GetAsync("/readyz");

        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        var report = await ready.JsonAsync();
        Assert.Equal("ready", report.GetProperty("status").GetString());
        Assert.All(report.GetProperty("models").EnumerateArray(), m => Assert.True(m.GetProperty("warm").GetBoolean()));
        Assert.True(report.GetProperty("featureStore").GetProperty("reachable").GetBoolean());
        Assert.Equal("sqlite", report.GetProperty("featureStore").GetProperty("kind").GetString());
        // A balancer probing with HEAD gets the same status and no body.
        foreach (var probe in new[] { "/healthz", "/readyz" })
        {
            var head = await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, probe));
            Assert.Equal(HttpStatusCode.OK, head.StatusCode);
            Assert.Empty(await head.Content.ReadAsByteArrayAsync());
        }
    }
}
