using System.Net;
using System.Text.Json;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Api;

/// <summary>
/// /evaluate scores one run: per-head losses and the combined loss, checked against values this test
/// computes itself from the raw outputs (fetched through the v2 tensor API from the same rows).
/// </summary>
public sealed class EvaluateApiTests
{
    private const int Rows = 16;

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.3)]
    [InlineData(0.5)]
    [InlineData(1.0)]
    public async Task TwoHeadAlphaWeightingMatchesLossesComputedFromTheRawOutputs(double alpha)
    {
        var reference = ReferenceData.Load("ranking");
        await using var app = new ServeFactory();
        using var client = app.CreateClient();
        var rows = reference.Entities.Take(Rows).ToList();
        var raw = await RawOutputsAsync(client, reference, Rows);
        var yA = Labels(seed: 1, scale: 40);
        var yB = Labels(seed: 2, scale: 15);

        var body = await (await client.PostJsonAsync("/v1/models/ranking/evaluate", new
        {
            instances = rows,
            heads = new[] { "dwell", "revenue" },
            alpha,
            labels = new Dictionary<string, object> { ["dwell"] = yA, ["revenue"] = yB },
        })).JsonAsync();

        var lA = Mse(raw["dwell"], yA, reference, "dwell");
        var lB = Mse(raw["revenue"], yB, reference, "revenue");
        var l = (alpha * lA) + ((1 - alpha) * lB);
        AssertRelative(lA, body.GetProperty("heads").GetProperty("dwell").GetProperty("loss").GetDouble());
        AssertRelative(lB, body.GetProperty("heads").GetProperty("revenue").GetProperty("loss").GetDouble());
        AssertRelative(l, body.GetProperty("loss").GetDouble());
        Assert.Equal("weighted", body.GetProperty("combination").GetString());
    }

    [Fact]
    public async Task LabelsShapedNByOneAndNGiveTheSameLossNeverABroadcast()
    {
        var reference = ReferenceData.Load("ranking");
        await using var app = new ServeFactory();
        using var client = app.CreateClient();
        var rows = reference.Entities.Take(Rows).ToList();
        var raw = await RawOutputsAsync(client, reference, Rows);
        var y = Labels(seed: 3, scale: 20);

        var flat = await (await client.PostJsonAsync("/v1/models/ranking/evaluate", new { instances = rows, labels = new { dwell = y } })).JsonAsync();
        var column = await (await client.PostJsonAsync("/v1/models/ranking/evaluate", new { instances = rows, labels = new { dwell = y.Select(v => new[] { v }) } })).JsonAsync();

        var expected = Mse(raw["dwell"], y, reference, "dwell");
        AssertRelative(expected, flat.GetProperty("heads").GetProperty("dwell").GetProperty("loss").GetDouble());
        AssertRelative(expected, column.GetProperty("heads").GetProperty("dwell").GetProperty("loss").GetDouble());
    }

    [Fact]
    public async Task UncertaintyWeightingUsesTheManifestsLearnedLogVariances()
    {
        var reference = ReferenceData.Load("ranking-mtl");
        await using var app = new ServeFactory();
        using var client = app.CreateClient();
        var rows = reference.Entities.Take(Rows).ToList();
        var raw = await RawOutputsAsync(client, reference, Rows, "ranking-mtl");
        var clicks = Enumerable.Range(0, Rows).Select(i => (double)(i % 3 == 0 ? 1 : 0)).ToArray();
        var dwell = Labels(seed: 4, scale: 30);
        var revenue = Labels(seed: 5, scale: 10);

        var body = await (await client.PostJsonAsync("/v1/models/ranking-mtl/evaluate", new
        {
            instances = rows,
            combination = "uncertainty",
            labels = new Dictionary<string, object> { ["click"] = clicks, ["dwell"] = dwell, ["revenue"] = revenue },
        })).JsonAsync();

        var s = reference.Manifest.GetProperty("loss").GetProperty("logVariances");
        var bce = clicks.Select((y, i) =>
        {
            double z = raw["click_logit"][i];
            return Math.Max(z, 0) - (z * y) + Math.Log(1 + Math.Exp(-Math.Abs(z)));
        }).Average();
        var lDwell = Mse(raw["dwell"], dwell, reference, "dwell");
        var lRevenue = Mse(raw["revenue"], revenue, reference, "revenue");
        var sc = s.GetProperty("click").GetDouble();
        var sd = s.GetProperty("dwell").GetDouble();
        var sr = s.GetProperty("revenue").GetDouble();
        var expected = (Math.Exp(-sc) * bce) + (0.5 * sc) + (0.5 * Math.Exp(-sd) * lDwell) + (0.5 * sd) + (0.5 * Math.Exp(-sr) * lRevenue) + (0.5 * sr);
        AssertRelative(bce, body.GetProperty("heads").GetProperty("click").GetProperty("loss").GetDouble());
        AssertRelative(expected, body.GetProperty("loss").GetDouble());
        Assert.Equal("uncertainty", body.GetProperty("combination").GetString());
    }

    [Fact]
    public async Task ImageHeadsScoreClassNamesAndBoxes()
    {
        var reference = ReferenceData.Load("shapes");
        await using var app = new ServeFactory();
        using var client = app.CreateClient();
        var labels = File.ReadAllLines(Path.Combine(RepositoryPaths.Model("shapes"), "labels.txt")).Where(l => l.Length > 0).ToList();
        var names = Enumerable.Range(0, 8).Select(r => labels[Array.IndexOf(HttpJson.Softmax(reference.OutputRow("class_logits", r)), HttpJson.Softmax(reference.OutputRow("class_logits", r)).Max())]).ToArray();
        var boxes = Enumerable.Range(0, 8).Select(r => reference.OutputRow("bbox", r)).ToArray();

        var body = await (await client.PostJsonAsync("/v1/models/shapes/evaluate", new
        {
            instances = reference.Images.Take(8).Select(image => new { image }),
            labels = new Dictionary<string, object> { ["class"] = names, ["bbox"] = boxes },
        })).JsonAsync();

        var heads = body.GetProperty("heads");
        Assert.Equal(1.0, heads.GetProperty("class").GetProperty("metrics").GetProperty("accuracy").GetDouble());
        Assert.True(heads.GetProperty("bbox").GetProperty("loss").GetDouble() < 1e-6);
        Assert.True(heads.GetProperty("bbox").GetProperty("metrics").GetProperty("meanIou").GetDouble() > 0.999);
    }

    [Theory]
    [InlineData("""{"user_id":"u0001","item_id":"i0001","labels":{"ctr":[1]}}""", "labels.ctr")]
    [InlineData("""{"user_id":"u0001","item_id":"i0001","labels":{"dwell":"long"}}""", "labels.dwell")]
    [InlineData("""{"user_id":"u0001","item_id":"i0001","labels":{"dwell":[1, 2]}}""", "labels.dwell")]
    [InlineData("""{"user_id":"u0001","item_id":"i0001","labels":{"dwell":["NaN"]}}""", "labels.dwell")]
    [InlineData("""{"user_id":"u0001","item_id":"i0001"}""", "labels")]
    [InlineData("""{"user_id":"u0001","item_id":"i0001","labels":{"dwell":[1]},"alpha":1.5}""", "alpha")]
    public async Task BadLabelsAre400NamingTheField(string body, string field)
    {
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        var response = await client.PostRawAsync("/v1/models/ranking/evaluate", body);

        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, text);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(field, JsonDocument.Parse(text).RootElement.GetProperty("field").GetString());
    }

    /// <summary>The raw outputs of the first rows, from the v2 tensor API on the same server.</summary>
    private static async Task<Dictionary<string, double[]>> RawOutputsAsync(HttpClient client, ReferenceData reference, int rows, string model = "ranking")
    {
        var data = Enumerable.Range(0, rows).SelectMany(r => reference.InputRow("features", r)).ToArray();
        var body = await (await client.PostJsonAsync($"/v2/models/{model}/infer", new
        {
            inputs = new[] { new { name = "features", shape = new[] { rows, data.Length / rows }, datatype = "FP32", data } },
        })).JsonAsync();
        return body.GetProperty("outputs").EnumerateArray().ToDictionary(o => o.GetProperty("name").GetString()!, o => o.GetProperty("data").Numbers());
    }

    private static double[] Labels(int seed, double scale)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, Rows).Select(_ => Math.Round(random.NextDouble() * scale, 3)).ToArray();
    }

    /// <summary>MSE in the head's raw output space: labels mapped back through the manifest's scale and offset.</summary>
    private static double Mse(double[] raw, double[] labels, ReferenceData reference, string head)
    {
        var scale = (double)(decimal)reference.HeadNumber(head, "scale", 1);
        var offset = (double)(decimal)reference.HeadNumber(head, "offset", 0);
        return raw.Zip(labels, (p, y) => Math.Pow(p - ((y - offset) / scale), 2)).Average();
    }

    private static void AssertRelative(double expected, double actual) =>
        Assert.True(Math.Abs(expected - actual) <= 1e-6 * Math.Max(1e-12, Math.Abs(expected)), $"{actual}, expected {expected}");
}
