using System.Text.Json;
using MultiHeadServe.Heads;

namespace MultiHeadServe.Tests.Heads;

/// <summary>
/// The predict routes write head results by hand (<see cref="HeadResultJson"/>); the OpenAPI document and every
/// other route describe them through the serializer. The two must write the same bytes for every kind and shape.
/// </summary>
public sealed class HeadResultJsonTests
{
    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    public static TheoryData<HeadResult> Results() => new()
    {
        new BinaryResult(0.25548008f, false, 0.5f),
        new BinaryResult(1f, true, 0.3f),
        new RegressionResult { Value = 113.35738f },
        new RegressionResult { Values = [1.5f, -2.25e-7f, 3.4028235e38f] },
        new ClassificationResult("circle", 1, 0.9f, [new ClassScore("circle", 1, 0.9f), new ClassScore("tri\"angle", 0, 0.1f)],
            new Dictionary<string, float> { ["tri\"angle"] = 0.1f, ["circle"] = 0.9f, ["carré é"] = 1e-30f }),
        new MultilabelResult([new LabelDecision("red", 0.7f, true), new LabelDecision("<blue>", 0.2f, false)], ["red"]),
        new MultilabelResult([], []),
        new BoundingBoxResult(new BoxCoordinates(0.1f, 0.2f, 0.3f, 0.4f), "xyxy", null),
        new BoundingBoxResult(new BoxCoordinates(0, 0, 1, 1), "xyxy", new BoxCoordinates(0, 0, 640, 480.5f)),
        new EmbeddingResult([0.6f, -0.8f], 1f),
    };

    [Theory]
    [MemberData(nameof(Results))]
    public void WritesWhatTheSerializerWrites(HeadResult result)
    {
        var expected = JsonSerializer.Serialize<HeadResult>(result, Web);

        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            HeadResultJson.Write(writer, result);
        }

        Assert.Equal(expected, System.Text.Encoding.UTF8.GetString(stream.ToArray()));
    }
}
