using System.Net;
using System.Text.Json;
using MultiHeadServe.Observability;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Api;

/// <summary>The tabular model (three fused members): entity keys or inline features in, every head out.</summary>
public sealed class PredictRankingTests
{
    private const double Tolerance = 1e-4;

    [Fact]
    public async Task EntityKeysFetchFeaturesFromTheStoreAndEveryHeadEqualsTheReference()
    {
        var reference = ReferenceData.Load("ranking");
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        var response = await client.PostJsonAsync("/v1/models/ranking/predict", new { instances = reference.Entities });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var predictions = (await response.JsonAsync()).GetProperty("predictions").EnumerateArray().ToList();
        Assert.Equal(reference.Rows, predictions.Count);
        for (var r = 0; r < reference.Rows; r++)
        {
            AssertMatchesReference(reference, predictions[r].GetProperty("heads"), r);
        }
    }

    [Fact]
    public async Task InlineFeaturesGiveTheSameAnswerAsTheStore()
    {
        var reference = ReferenceData.Load("ranking");
        await using var app = new ServeFactory();
        using var client = app.CreateClient();
        var columns = reference.Manifest.GetProperty("features").GetProperty("columns").EnumerateArray().Select(c => c.GetString()!).ToList();

        for (var r = 0; r < 4; r++)
        {
            var values = reference.InputRow("features", r);
            var asVector = await (await client.PostJsonAsync("/v1/models/ranking/predict", new { features = values })).JsonAsync();
            var named = columns.Select((c, i) => (c, values[i])).ToDictionary(p => p.c, p => p.Item2);
            var asNamed = await (await client.PostJsonAsync("/v1/models/ranking/predict", new { features = named })).JsonAsync();

            AssertMatchesReference(reference, asVector.GetProperty("heads"), r);
            AssertMatchesReference(reference, asNamed.GetProperty("heads"), r);
        }
    }

    [Fact]
    public async Task AHeadSubsetReturnsOnlyThoseHeadsFromOneRun()
    {
        var reference = ReferenceData.Load("ranking");
        await using var app = new ServeFactory();
        using var client = app.CreateClient();
        var metrics = app.Service<ServeMetrics>();

        var runs = metrics.SessionRuns;
        var fromQuery = await (await client.PostJsonAsync("/v1/models/ranking/predict?heads=click", reference.Entities[0])).JsonAsync();
        var fromBody = await (await client.PostJsonAsync("/v1/models/ranking/predict",
            new Dictionary<string, object>(reference.Entities[1].Select(p => new KeyValuePair<string, object>(p.Key, p.Value))) { ["heads"] = new[] { "revenue", "dwell" } })).JsonAsync();

        Assert.Equal(["click"], fromQuery.GetProperty("heads").EnumerateObject().Select(p => p.Name));
        Assert.Equal(["revenue", "dwell"], fromBody.GetProperty("heads").EnumerateObject().Select(p => p.Name));
        Assert.Equal(runs + 2, metrics.SessionRuns);
    }

    [Fact]
    public async Task InstancesKeepTheirOrder()
    {
        var reference = ReferenceData.Load("ranking");
        await using var app = new ServeFactory();
        using var client = app.CreateClient();
        var order = new[] { 5, 0, 31, 7, 7, 2 };

        var body = await (await client.PostJsonAsync("/v1/models/ranking/predict?heads=revenue",
            new { instances = order.Select(i => reference.Entities[i]).ToList() })).JsonAsync();

        var predictions = body.GetProperty("predictions").EnumerateArray().ToList();
        Assert.Equal(order.Length, predictions.Count);
        for (var i = 0; i < order.Length; i++)
        {
            var expected = (reference.OutputRow("revenue", order[i])[0] * reference.HeadNumber("revenue", "scale", 1)) + reference.HeadNumber("revenue", "offset", 0);
            Assert.InRange(predictions[i].GetProperty("heads").GetProperty("revenue").GetProperty("value").GetDouble(),
                expected - (Tolerance * Math.Max(1, Math.Abs(expected))), expected + (Tolerance * Math.Max(1, Math.Abs(expected))));
        }
    }

    [Fact]
    public async Task EveryCallFetchesFeaturesOnceAndRunsTheSessionOnceWhateverTheHeads()
    {
        var reference = ReferenceData.Load("ranking");
        await using var app = new ServeFactory();
        using var client = app.CreateClient();
        var metrics = app.Service<ServeMetrics>();

        foreach (var heads in new[] { "click", "click,dwell", "click,dwell,revenue", "" })
        {
            var fetches = metrics.FeatureFetches;
            var runs = metrics.SessionRuns;
            var response = await client.PostJsonAsync($"/v1/models/ranking/predict?heads={heads}", reference.Entities[2]);

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(fetches + 1, metrics.FeatureFetches);
            Assert.Equal(runs + 1, metrics.SessionRuns);
        }
    }

    [Fact]
    public async Task TheNativelyMultiHeadModelAlsoEqualsItsReference()
    {
        var reference = ReferenceData.Load("ranking-mtl");
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        var body = await (await client.PostJsonAsync("/v1/models/ranking-mtl/predict", new { instances = reference.Entities })).JsonAsync();

        var predictions = body.GetProperty("predictions").EnumerateArray().ToList();
        for (var r = 0; r < reference.Rows; r++)
        {
            AssertMatchesReference(reference, predictions[r].GetProperty("heads"), r);
        }
    }

    internal static void AssertMatchesReference(ReferenceData reference, JsonElement heads, int row)
    {
        var click = HttpJson.Sigmoid(reference.OutputRow("click_logit", row)[0]);
        Assert.InRange(heads.GetProperty("click").GetProperty("probability").GetDouble(), click - Tolerance, click + Tolerance);
        Assert.Equal(click >= reference.HeadNumber("click", "threshold", 0.5f), heads.GetProperty("click").GetProperty("decision").GetBoolean());
        foreach (var head in new[] { "dwell", "revenue" })
        {
            var expected = (reference.OutputRow(head, row)[0] * reference.HeadNumber(head, "scale", 1)) + reference.HeadNumber(head, "offset", 0);
            var tolerance = Tolerance * Math.Max(1, Math.Abs(expected));
            Assert.InRange(heads.GetProperty(head).GetProperty("value").GetDouble(), expected - tolerance, expected + tolerance);
        }
    }
}
