using System.Text.Json;
using MultiHeadServe.Heads.Losses;

namespace MultiHeadServe.Tests.Heads;

public sealed class HeadLabelsJsonTests
{
    [Fact]
    public void AnArrayOfNumbersIsOneValuePerRow()
    {
        var labels = Read("[1, 2.5, -3]");

        Assert.Equal([1, 2.5, -3], labels.Values!);
        Assert.Equal([3L], labels.Shape!);
        Assert.Null(labels.ClassNames);
    }

    [Fact]
    public void NestedArraysKeepTheirShape()
    {
        var labels = Read("[[1, 2], [3, 4], [5, 6]]");

        Assert.Equal([1, 2, 3, 4, 5, 6], labels.Values!);
        Assert.Equal([3L, 2L], labels.Shape!);
    }

    [Fact]
    public void AnArrayOfStringsIsClassNames()
    {
        var labels = Read("""["cat", "dog"]""");

        Assert.Equal(["cat", "dog"], labels.ClassNames!);
        Assert.Null(labels.Values);
    }

    [Theory]
    [InlineData("""{"a": 1}""", "labels.h must be an array with one entry per input row, not an object")]
    [InlineData("3", "labels.h must be an array with one entry per input row, not the number 3")]
    [InlineData("[1, true]", "labels.h[1] is true; expected a finite number")]
    [InlineData("""[1, "2"]""", "labels.h[1] is the string \"2\"; expected a finite number")]
    [InlineData("""["cat", 1]""", "labels.h[1] is the number 1; an array of class names holds only strings")]
    [InlineData("[[1, 2], [3]]", "labels.h[1] is an array of 1; expected an array of 2 like the first entry at this depth (labels must be rectangular)")]
    [InlineData("[[1, 2], 3]", "labels.h[1] is the number 3; expected an array of 2 like the first entry at this depth (labels must be rectangular)")]
    [InlineData("[1e400]", "labels.h[0] is the number 1e400; expected a finite number")]
    [InlineData("[null]", "labels.h[0] is null; expected a finite number")]
    public void MalformedLabelsNameTheElementAtFault(string json, string message)
    {
        var error = Assert.Throws<LabelException>(() => Read(json));

        Assert.Equal("labels.h", error.Field);
        Assert.Equal(message, error.Message);
    }

    private static HeadLabels Read(string json)
    {
        using var document = JsonDocument.Parse(json);
        return HeadLabels.FromJson("h", document.RootElement.Clone());
    }
}
