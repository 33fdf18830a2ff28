using System.Net;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Api;

/// <summary>
/// The conversion model: a served head and an auxiliary head that was trained with it but is not served. Clients
/// see and get only the served head; /evaluate still scores the other on labels.
/// </summary>
public sealed class ConversionModelTests
{
    [Fact]
    public async Task OnlyTheServedHeadIsListedAndPredictedAndTheOtherStillEvaluates()
    {
        var reference = ReferenceData.Load("conversion");
        await using var app = new ServeFactory();
        using var client = app.CreateClient();
        var rows = Enumerable.Range(0, 4).Select(r => new { features = reference.InputRow("features", r) }).ToList();

        var description = await (await client.GetAsync("/v1/models/conversion")).JsonAsync();
        var predicted = await (await client.PostJsonAsync("/v1/models/conversion/predict", new { instances = rows })).JsonAsync();
        var unserved = await client.PostJsonAsync("/v1/models/conversion/predict?heads=click", rows[0]);
        var evaluated = await client.PostJsonAsync("/v1/models/conversion/evaluate", new
        {
            instances = rows,
            heads = new[] { "conversion", "click" },
            labels = new { conversion = new[] { 0.0, 1, 0, 0 }, click = new[] { 1.0, 1, 0, 1 } },
        });

        var heads = description.GetProperty("model").GetProperty("heads").EnumerateArray().ToDictionary(h => h.GetProperty("name").GetString()!, h => h.GetProperty("served").GetBoolean());
        Assert.Equal(new Dictionary<string, bool> { ["conversion"] = true, ["click"] = false }, heads);
        var predictions = predicted.GetProperty("predictions").EnumerateArray().ToList();
        for (var r = 0; r < rows.Count; r++)
        {
            var served = predictions[r].GetProperty("heads");
            Assert.Equal(["conversion"], served.EnumerateObject().Select(h => h.Name));
            Assert.Equal(HttpJson.Sigmoid(reference.OutputRow("conversion_logit", r)[0]), served.GetProperty("conversion").GetProperty("probability").GetDouble(), 1e-4);
        }

        Assert.Equal(HttpStatusCode.NotFound, unserved.StatusCode);
        Assert.Equal("click", (await unserved.JsonAsync()).GetProperty("head").GetString());
        Assert.Equal(HttpStatusCode.OK, evaluated.StatusCode);
        var losses = (await evaluated.JsonAsync()).GetProperty("heads");
        Assert.True(losses.GetProperty("click").GetProperty("loss").GetDouble() > 0);
        Assert.True(losses.GetProperty("conversion").GetProperty("loss").GetDouble() > 0);
    }
}
