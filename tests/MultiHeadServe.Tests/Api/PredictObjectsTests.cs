using System.Net;
using Microsoft.Extensions.DependencyInjection;
using MultiHeadServe.Models;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Api;

/// <summary>
/// The objects model: three teams' complete models (pretrained ResNet-18 + a head each) served as one fused graph
/// that computes the backbone once, answering as the training kit did.
/// </summary>
public sealed class PredictObjectsTests
{
    private const double Tolerance = 1e-4;

    [Fact]
    public async Task EveryHeadFromOneFusedRunEqualsTheKitsOutputsAndOneHeadRunsTheFullGraph()
    {
        var reference = ReferenceData.Load("objects");
        await using var app = new ServeFactory(new Dictionary<string, string?>
        {
            ["ModelRepository:Only:0"] = "objects",
            ["ModelRepository:Only:1"] = null,
            ["ModelRepository:Only:2"] = null,
            ["ModelRepository:Only:3"] = null,
        });
        using var client = app.CreateClient();
        var instances = reference.Images.Select(image => new { image }).ToList();

        var response = await client.PostJsonAsync("/v1/models/objects/predict", new { instances });
        var classOnly = await client.PostJsonAsync("/v1/models/objects/predict?heads=class", new { instances });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.JsonAsync();
        var rows = body.GetProperty("predictions").EnumerateArray().ToList();
        Assert.Equal(reference.Rows, rows.Count);
        var classLabels = File.ReadAllLines(Path.Combine(RepositoryPaths.Model("objects"), "labels.txt")).Where(l => l.Length > 0).ToList();
        var colourLabels = File.ReadAllLines(Path.Combine(RepositoryPaths.Model("objects"), "colours.txt")).Where(l => l.Length > 0).ToList();
        for (var r = 0; r < rows.Count; r++)
        {
            var heads = rows[r].GetProperty("heads");
            AssertProbabilities(HttpJson.Softmax(reference.OutputRow("class_logits", r)), heads.GetProperty("class").GetProperty("probabilities"), classLabels);
            AssertProbabilities(HttpJson.Softmax(reference.OutputRow("colour_logits", r)), heads.GetProperty("colour").GetProperty("probabilities"), colourLabels);
            var box = heads.GetProperty("bbox").GetProperty("box");
            var expected = reference.OutputRow("bbox", r);
            Assert.Equal(expected[0], box.GetProperty("xMin").GetDouble(), Tolerance);
            Assert.Equal(expected[1], box.GetProperty("yMin").GetDouble(), Tolerance);
            Assert.Equal(expected[2], box.GetProperty("xMax").GetDouble(), Tolerance);
            Assert.Equal(expected[3], box.GetProperty("yMax").GetDouble(), Tolerance);
        }

        Assert.Equal(HttpStatusCode.OK, classOnly.StatusCode);
        var subset = (await classOnly.JsonAsync()).GetProperty("predictions").EnumerateArray().ToList();
        for (var r = 0; r < rows.Count; r++)
        {
            var heads = subset[r].GetProperty("heads");
            Assert.Equal(["class"], heads.EnumerateObject().Select(h => h.Name));
            AssertProbabilities(HttpJson.Softmax(reference.OutputRow("class_logits", r)), heads.GetProperty("class").GetProperty("probabilities"), classLabels);
        }

        var model = app.Services.GetRequiredService<ModelRegistry>().All.Single();
        // One head needs the whole backbone (nearly all of the weights): it runs on the full session, not on a copy.
        Assert.Equal(0, model.Sessions.PrunedCount);
        // The fused graph computes the backbone once: one copy of its 22 convolutions' weights, not three.
        Assert.Equal(3, model.Manifest.Members!.Count);
    }

    private static void AssertProbabilities(double[] expected, System.Text.Json.JsonElement actual, List<string> labels)
    {
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], actual.GetProperty(labels[i]).GetDouble(), Tolerance);
        }
    }
}
