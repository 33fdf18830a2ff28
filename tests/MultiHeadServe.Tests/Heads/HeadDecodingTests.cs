using System.Text.Json;
using MultiHeadServe.Heads;

namespace MultiHeadServe.Tests.Heads;

public sealed class HeadDecodingTests
{
    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);

    [Fact]
    public void EveryHeadIsDecodedFromTheSameRunInDecoderOrder()
    {
        var classHead = TestHeads.Spec("class", "classification", "softmax");
        var boxHead = TestHeads.Spec("bbox", "bbox");
        HeadDecoder[] decoders = [HeadDecoder.Create(boxHead), HeadDecoder.Create(classHead, ["circle", "square"])];
        var outputs = new Dictionary<string, OutputTensor>
        {
            ["class_out"] = TestHeads.Output(classHead, [2, 2], 5f, 0f, 0f, 5f),
            ["bbox_out"] = TestHeads.Output(boxHead, [2, 4], 0f, 0f, 0.5f, 0.5f, 0.25f, 0.25f, 1f, 1f),
        };

        var results = HeadDecoding.DecodeAll(decoders, outputs, row: 1, DecodeContext.None);

        Assert.Equal(["bbox", "class"], results.Keys);
        Assert.Equal("square", Assert.IsType<ClassificationResult>(results["class"]).Label);
        Assert.Equal(new BoxCoordinates(0.25f, 0.25f, 1f, 1f), Assert.IsType<BoundingBoxResult>(results["bbox"]).Box);
    }

    [Fact]
    public void AMissingOutputNamesTheHead()
    {
        var decoder = HeadDecoder.Create(TestHeads.Spec("click", "binary", "sigmoid"));

        var error = Assert.Throws<HeadOutputException>(
            () => HeadDecoding.DecodeAll([decoder], new Dictionary<string, OutputTensor>(), 0, DecodeContext.None));

        Assert.Equal("click", error.Head);
        Assert.Contains("no output 'click_out'", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(float.NaN, "NaN")]
    [InlineData(float.PositiveInfinity, "Infinity")]
    [InlineData(float.NegativeInfinity, "-Infinity")]
    public void NonFiniteModelOutputIsAHeadOutputErrorNotInvalidJson(float value, string shown)
    {
        var decoder = HeadDecoder.Create(TestHeads.Spec("class", "classification", "softmax"), ["a", "b", "c"]);

        var error = Assert.Throws<HeadOutputException>(() => decoder.Decode([0.5f, value, 1f], DecodeContext.None));

        Assert.Equal("class", error.Head);
        Assert.Equal($"head 'class': output 'class_out' holds {shown} at column 1", error.Message);
    }

    [Fact]
    public void ARegressionValueBeyondFloatRangeIsAHeadOutputError()
    {
        var decoder = HeadDecoder.Create(TestHeads.Spec("revenue", "regression") with { Scale = 10f });

        // 3e38 · 10 exceeds float32's 3.4e38 and would be written as Infinity.
        var error = Assert.Throws<HeadOutputException>(() => decoder.Decode([3e38f], DecodeContext.None));

        Assert.Equal("revenue", error.Head);
    }

    [Fact]
    public void ResultsSerialiseWithTheirKindFirst()
    {
        var results = new OrderedDictionary<string, HeadResult>
        {
            ["click"] = new BinaryResult(0.5f, true, 0.5f),
            ["dwell"] = new RegressionResult { Value = 22f },
            ["position"] = new RegressionResult { Values = [1f, 2.5f] },
            ["bbox"] = new BoundingBoxResult(new BoxCoordinates(0.25f, 0.5f, 0.75f, 1f), "xyxy", null),
            ["vector"] = new EmbeddingResult([3f, 4f], 5f),
        };

        var json = JsonSerializer.Serialize(results, Web);

        Assert.Equal(
            Compact("""
            {
              "click": { "kind": "binary", "probability": 0.5, "decision": true, "threshold": 0.5 },
              "dwell": { "kind": "regression", "value": 22 },
              "position": { "kind": "regression", "values": [1, 2.5] },
              "bbox": { "kind": "bbox", "box": { "xMin": 0.25, "yMin": 0.5, "xMax": 0.75, "yMax": 1 }, "format": "xyxy" },
              "vector": { "kind": "embedding", "vector": [3, 4], "norm": 5 }
            }
            """),
            json);
    }

    [Fact]
    public void ClassificationSerialisesLabelsAsWrittenAndTopKAsObjects()
    {
        var decoder = HeadDecoder.Create(TestHeads.Spec("class", "classification") with { TopK = 1 }, ["Big Cat", "dog"]);
        HeadResult result = decoder.Decode([0.25f, 0.75f], DecodeContext.None);

        var json = JsonSerializer.Serialize(result, Web);

        Assert.Equal(
            Compact("""
            {
              "kind": "classification", "label": "dog", "index": 1, "probability": 0.75,
              "top": [{ "label": "dog", "index": 1, "probability": 0.75 }],
              "probabilities": { "Big Cat": 0.25, "dog": 0.75 }
            }
            """),
            json);
    }

    [Fact]
    public void TheKindIsWrittenOnlyThroughTheBaseType()
    {
        // What the service must do: declare results as HeadResult (or object), never as the concrete type.
        var result = new BinaryResult(0.5f, true, 0.5f);

        Assert.StartsWith("""{"kind":"binary",""", JsonSerializer.Serialize<HeadResult>(result, Web), StringComparison.Ordinal);
        Assert.StartsWith("""{"kind":"binary",""", JsonSerializer.Serialize<object>(result, Web), StringComparison.Ordinal);
        Assert.StartsWith("""{"probability":""", JsonSerializer.Serialize(result, Web), StringComparison.Ordinal);
    }

    [Fact]
    public void BoxPixelsAppearOnlyWithAnImageSize()
    {
        HeadResult result = HeadDecoder.Create(TestHeads.Spec("bbox", "bbox"))
            .Decode([0f, 0f, 0.5f, 0.5f], new DecodeContext(ImageSize: new ImageSize(10, 20)));

        var json = JsonSerializer.Serialize(result, Web);

        Assert.EndsWith(""","format":"xyxy","pixels":{"xMin":0,"yMin":0,"xMax":5,"yMax":10}}""", json, StringComparison.Ordinal);
    }

    /// <summary>Expected JSON written readably, compacted with its property order kept.</summary>
    private static string Compact(string json) => System.Text.Json.Nodes.JsonNode.Parse(json)!.ToJsonString();
}
