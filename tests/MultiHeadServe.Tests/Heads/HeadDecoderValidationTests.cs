using System.Text.Json;
using MultiHeadServe.Heads;
using MultiHeadServe.Models;

namespace MultiHeadServe.Tests.Heads;

public sealed class HeadDecoderValidationTests
{
    public static TheoryData<HeadSpec, string, string> BadSpecs => new()
    {
        { TestHeads.Spec("click", "binary", "softmax"), "activation", "does not apply to a binary head" },
        { TestHeads.Spec("dwell", "regression", "sigmoid"), "activation", "does not apply to a regression head" },
        { TestHeads.Spec("class", "classification", "softmax") with { TopK = 0 }, "topK", "at least 1" },
        { TestHeads.Spec("click", "binary", "sigmoid") with { Threshold = 1.5f }, "threshold", "[0, 1]" },
        { TestHeads.Spec("revenue", "regression") with { Scale = 0f }, "scale", "non-zero" },
    };

    [Theory]
    [MemberData(nameof(BadSpecs))]
    public void ManifestMistakesAreReportedAtConstructionWithHeadAndField(HeadSpec spec, string field, string reason)
    {
        var error = Assert.Throws<HeadSpecException>(() => HeadDecoder.Create(spec));

        Assert.Equal((spec.Name, field), (error.Head, error.Field));
        Assert.Contains($"head '{spec.Name}', field '{field}'", error.Message, StringComparison.Ordinal);
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
        Assert.IsAssignableFrom<ArgumentException>(error);
    }

    [Theory]
    [InlineData("""{"name":"score","output":"o","kind":"ranking"}""", "$.kind", "'ranking' is not one of classification, multilabel, binary, regression, bbox, embedding.")]
    [InlineData("""{"name":"class","output":"o","kind":"classification","activation":"relu"}""", "$.activation", "'relu' is not one of none, softmax, sigmoid.")]
    [InlineData("""{"name":"class","output":"o","kind":"classification","activation":"Softmax"}""", "$.activation", "'Softmax' is not one of none, softmax, sigmoid.")]
    [InlineData("""{"name":"bbox","output":"o","kind":"bbox","boxFormat":"ltrb"}""", "$.boxFormat", "'ltrb' is not one of xyxy, xywh, cxcywh.")]
    [InlineData("""{"name":"bbox","output":"o","kind":4}""", "$.kind", "4 is not one of classification, multilabel, binary, regression, bbox, embedding.")]
    [InlineData("""{"name":"bbox","output":"o","kind":null}""", "$.kind", "null is not one of classification, multilabel, binary, regression, bbox, embedding.")]
    public void NamesOutsideTheEnumsAreRefusedAsTheManifestIsReadWithFieldAndAllowedNames(string json, string path, string message)
    {
        var error = Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<HeadSpec>(json, ManifestJson.Options));

        Assert.Equal(path, error.Path);
        Assert.Equal(message, error.Message);
    }

    [Fact]
    public void EveryMemberIsWrittenAndReadByItsManifestName()
    {
        var spec = TestHeads.Spec("bbox", "bbox") with { BoxFormat = BoxFormat.Cxcywh };

        var json = JsonSerializer.Serialize(spec, ManifestJson.Options);

        Assert.Contains("\"kind\":\"bbox\",\"activation\":\"none\"", json, StringComparison.Ordinal);
        Assert.Contains("\"boxFormat\":\"cxcywh\"", json, StringComparison.Ordinal);
        Assert.Equal(spec, JsonSerializer.Deserialize<HeadSpec>(json, ManifestJson.Options));
        Assert.Equal(["image", "store", "inline"], Enum.GetValues<FeatureSource>().Select(s => JsonSerializer.Serialize(s).Trim('"')));
    }

    [Fact]
    public void LabelsThatDisagreeWithTheOutputWidthAreRefused()
    {
        var error = Assert.Throws<HeadSpecException>(
            () => HeadDecoder.Create(TestHeads.Spec("class", "classification", "softmax"), ["a", "b", "c"], outputWidth: 4));

        Assert.Equal("labels", error.Field);
        Assert.Contains("3 labels, but output 'class_out' has 4 values per row", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("bbox", 3)]
    [InlineData("binary", 2)]
    public void FixedWidthHeadsCheckTheOutputWidth(string kind, int width)
    {
        var error = Assert.Throws<HeadSpecException>(() => HeadDecoder.Create(TestHeads.Spec("h", kind), outputWidth: width));

        Assert.Equal("output", error.Field);
        Assert.Contains($"has {width} values per row", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DuplicateLabelsAreRefusedBecauseTheyCollideAsJsonKeys()
    {
        var error = Assert.Throws<HeadSpecException>(() => HeadDecoder.Create(TestHeads.Spec("class", "classification"), ["cat", "dog", "cat"]));

        Assert.Equal("labels", error.Field);
        Assert.Contains("'cat' appears more than once", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LabelsOnAKindWithoutClassesAreRefused()
    {
        var error = Assert.Throws<HeadSpecException>(() => HeadDecoder.Create(TestHeads.Spec("dwell", "regression"), ["a"]));

        Assert.Equal("labels", error.Field);
    }

    [Fact]
    public void AnOutputWiderThanTheLabelsFileFailsAtDecodeAsAModelFault()
    {
        // The session did not report the width at load, so the mismatch shows on the first row.
        var decoder = HeadDecoder.Create(TestHeads.Spec("class", "classification", "softmax"), ["a", "b", "c"]);

        var error = Assert.Throws<HeadOutputException>(() => decoder.Decode([1f, 2f, 3f, 4f], DecodeContext.None));

        Assert.Equal("class", error.Head);
        Assert.Contains("has 4 values per row; the head needs 3", error.Message, StringComparison.Ordinal);
    }
}
