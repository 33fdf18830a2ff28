using System.Net;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Api;

/// <summary>The vision model end to end: base64 PNG in, class and box out, equal to PyTorch's outputs.</summary>
public sealed class PredictShapesTests
{
    private const double Tolerance = 1e-4;

    [Fact]
    public async Task EveryHeadFromAnImageEqualsTheReferenceOutputs()
    {
        var reference = ReferenceData.Load("shapes");
        await using var app = new ServeFactory();
        using var client = app.CreateClient();
        var labels = File.ReadAllLines(Path.Combine(RepositoryPaths.Model("shapes"), "labels.txt")).Where(l => l.Length > 0).ToList();

        var response = await client.PostJsonAsync("/v1/models/shapes/predict",
            new { instances = reference.Images.Select(image => new { image }).ToList() });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var predictions = (await response.JsonAsync()).GetProperty("predictions").EnumerateArray().ToList();
        Assert.Equal(reference.Rows, predictions.Count);
        for (var r = 0; r < reference.Rows; r++)
        {
            var heads = predictions[r].GetProperty("heads");
            var expected = HttpJson.Softmax(reference.OutputRow("class_logits", r));
            var probabilities = heads.GetProperty("class").GetProperty("probabilities");
            for (var k = 0; k < labels.Count; k++)
            {
                Assert.InRange(probabilities.GetProperty(labels[k]).GetDouble(), expected[k] - Tolerance, expected[k] + Tolerance);
            }

            Assert.Equal(labels[Array.IndexOf(expected, expected.Max())], heads.GetProperty("class").GetProperty("label").GetString());
            var box = heads.GetProperty("bbox").GetProperty("box");
            var expectedBox = reference.OutputRow("bbox", r);
            string[] corners = ["xMin", "yMin", "xMax", "yMax"];
            for (var c = 0; c < 4; c++)
            {
                Assert.InRange(box.GetProperty(corners[c]).GetDouble(), expectedBox[c] - Tolerance, expectedBox[c] + Tolerance);
                Assert.InRange(heads.GetProperty("bbox").GetProperty("pixels").GetProperty(corners[c]).GetDouble(),
                    (expectedBox[c] * 64) - 0.01, (expectedBox[c] * 64) + 0.01);
            }
        }
    }

    [Fact]
    public async Task OneImageGivesTheCombinedResponseWithTimings()
    {
        var reference = ReferenceData.Load("shapes");
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        var body = await (await client.PostJsonAsync("/v1/models/shapes/predict", new { image = reference.Images[0] })).JsonAsync();

        Assert.Equal("shapes", body.GetProperty("model").GetString());
        Assert.Equal(1, body.GetProperty("version").GetInt32());
        Assert.Equal(["class", "bbox"], body.GetProperty("heads").EnumerateObject().Select(p => p.Name));
        Assert.Equal("classification", body.GetProperty("heads").GetProperty("class").GetProperty("kind").GetString());
        Assert.True(body.GetProperty("timings").GetProperty("inferenceMs").GetDouble() > 0);
        Assert.Equal(1, body.GetProperty("timings").GetProperty("batchRows").GetInt32());
    }

    [Fact]
    public async Task ASingleHeadRouteAnswersLikeTheOldPerModelApi()
    {
        var reference = ReferenceData.Load("shapes");
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        var body = await (await client.PostJsonAsync("/v1/models/shapes/heads/bbox/predict", new { image = reference.Images[3] })).JsonAsync();

        Assert.Equal("bbox", body.GetProperty("head").GetString());
        var box = body.GetProperty("prediction").GetProperty("box");
        Assert.InRange(box.GetProperty("xMin").GetDouble(), reference.OutputRow("bbox", 3)[0] - Tolerance, reference.OutputRow("bbox", 3)[0] + Tolerance);
    }

    [Fact]
    public async Task PlainEscapedAndDataUrlBase64GiveTheSameOutputs()
    {
        // The service decodes plain base64 straight from the request bytes and unescapes a string only
        // when it holds JSON escapes: every spelling of the same image must give the reference outputs.
        var reference = ReferenceData.Load("shapes");
        await using var app = new ServeFactory();
        using var client = app.CreateClient();
        var image = reference.Images[5];
        Assert.Contains('/', image);
        var bodies = new Dictionary<string, string>
        {
            ["plain"] = $$"""{"image":"{{image}}"}""",
            ["escaped"] = $$"""{"image":"{{image.Replace("/", "\\/", StringComparison.Ordinal).Replace("+", "\\u002B", StringComparison.Ordinal)}}"}""",
            ["data URL, spaced"] = $$"""{"image":"data:image/png;base64,{{string.Join(" ", image.Chunk(76).Select(line => new string(line)))}}"}""",
        };

        foreach (var (spelling, body) in bodies)
        {
            var response = await client.PostRawAsync("/v1/models/shapes/heads/bbox/predict", body);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{spelling}: {await response.Content.ReadAsStringAsync()}");
            var box = (await response.JsonAsync()).GetProperty("prediction").GetProperty("box");
            Assert.InRange(box.GetProperty("xMin").GetDouble(), reference.OutputRow("bbox", 5)[0] - Tolerance, reference.OutputRow("bbox", 5)[0] + Tolerance);
            Assert.InRange(box.GetProperty("yMax").GetDouble(), reference.OutputRow("bbox", 5)[3] - Tolerance, reference.OutputRow("bbox", 5)[3] + Tolerance);
        }
    }
}
