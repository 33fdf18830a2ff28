using System.Net;
using System.Text.Json;
using MultiHeadServe.Api;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Api;

/// <summary>
/// The predict routes write their answer by hand; the OpenAPI document describes it with the response records.
/// Every shape (one row, instances, one head, an image model with boxes) read into the records and written back by
/// the serializer must give the very bytes the service sent: no member renamed, reordered, added or lost.
/// </summary>
public sealed class PredictResponseShapeTests
{
    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    [Fact]
    public async Task EveryPredictShapeIsExactlyWhatItsRecordSerialisesTo()
    {
        await using var app = new ServeFactory();
        using var client = app.CreateClient();
        var image = Convert.ToBase64String(await File.ReadAllBytesAsync(Path.Combine(RepositoryPaths.Models, "shapes", "samples", "triangle.png")));

        await AssertRoundTrip<PredictResponse>(client, "/v1/models/ranking/predict", new { user_id = "u0042", item_id = "i0007" });
        await AssertRoundTrip<PredictResponse>(client, "/v1/models/ranking/predict?heads=revenue,click", new
        {
            instances = new object[] { new { user_id = "u0042", item_id = "i0007" }, new { user_id = "u0001", item_id = "i0311" } },
        });
        await AssertRoundTrip<HeadPredictResponse>(client, "/v1/models/ranking/heads/dwell/predict", new { user_id = "u0042", item_id = "i0007" });
        await AssertRoundTrip<HeadPredictResponse>(client, "/v1/models/ranking/heads/click/predict", new
        {
            instances = new object[] { new { user_id = "u0042", item_id = "i0007" } },
        });
        await AssertRoundTrip<PredictResponse>(client, "/v1/models/shapes/predict", new { image });
        await AssertRoundTrip<PredictResponse>(client, "/v1/models/shapes/predict", new { instances = new object[] { new { image }, new { image } } });
        await AssertRoundTrip<HeadPredictResponse>(client, "/v1/models/shapes/heads/bbox/predict", new { image });
    }

    private static async Task AssertRoundTrip<T>(HttpClient client, string url, object body)
    {
        var response = await client.PostJsonAsync(url, body);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var sent = await response.Content.ReadAsStringAsync();
        Assert.Equal(sent.Length, response.Content.Headers.ContentLength);

        var record = JsonSerializer.Deserialize<T>(sent, Web)!;
        Assert.Equal(JsonSerializer.Serialize(record, Web), sent);
    }
}
