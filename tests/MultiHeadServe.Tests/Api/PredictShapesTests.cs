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
}
