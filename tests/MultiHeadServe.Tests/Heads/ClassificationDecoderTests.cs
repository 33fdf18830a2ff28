using MultiHeadServe.Heads;

namespace MultiHeadServe.Tests.Heads;

public sealed class ClassificationDecoderTests
{
    private static readonly string[] Shapes = ["circle", "square", "triangle"];

    [Fact]
    public void SoftmaxOfKnownLogitsGivesKnownProbabilities()
    {
        var decoder = HeadDecoder.Create(TestHeads.Spec("class", "classification", "softmax"), Shapes);

        var result = Assert.IsType<ClassificationResult>(decoder.Decode([1f, 2f, 3f], DecodeContext.None));

        // e^z / Σ e^z with Σ = e + e² + e³ = 30.19287...: 0.0900306, 0.2447285, 0.6652410.
        TestHeads.Near(0.0900306, result.Probabilities["circle"]);
        TestHeads.Near(0.2447285, result.Probabilities["square"]);
        TestHeads.Near(0.6652410, result.Probabilities["triangle"]);
        Assert.Equal(("triangle", 2), (result.Label, result.Index));
        TestHeads.Near(0.6652410, result.Probability);
    }

    [Fact]
    public void SoftmaxIsStableForLogitsThatWouldOverflowExp()
    {
        var decoder = HeadDecoder.Create(TestHeads.Spec("class", "classification", "softmax"), Shapes);

        // exp(1001) overflows a double; shifted by the maximum these are the logits [1, 2, 3] again.
        var result = Assert.IsType<ClassificationResult>(decoder.Decode([1001f, 1002f, 1003f], DecodeContext.None));

        TestHeads.Near(0.6652410, result.Probability);
    }

    [Fact]
    public void TopKIsSortedByProbabilityWithTiesInIndexOrder()
    {
        var spec = TestHeads.Spec("class", "classification", "softmax") with { TopK = 3 };
        var decoder = HeadDecoder.Create(spec, ["a", "b", "c", "d"]);

        var result = Assert.IsType<ClassificationResult>(decoder.Decode([2f, 5f, 5f, 1f], DecodeContext.None));

        // b and c tie at e⁵ / (e² + 2e⁵ + e) = 0.4835350; the lower index comes first, then a at e² / ... = 0.0240738.
        Assert.Equal(["b", "c", "a"], result.Top.Select(s => s.Label));
        Assert.Equal([1, 2, 0], result.Top.Select(s => s.Index));
        TestHeads.Near(0.4835350, result.Top[1].Probability);
        TestHeads.Near(0.0240738, result.Top[2].Probability);
        Assert.Equal(("b", 1), (result.Label, result.Index));
    }

    [Fact]
    public void TopKLargerThanTheClassCountListsEveryClass()
    {
        var spec = TestHeads.Spec("class", "classification", "softmax") with { TopK = 10 };
        var decoder = HeadDecoder.Create(spec, Shapes);

        var result = Assert.IsType<ClassificationResult>(decoder.Decode([3f, 1f, 2f], DecodeContext.None));

        Assert.Equal(["circle", "triangle", "square"], result.Top.Select(s => s.Label));
    }

    [Fact]
    public void ActivationNoneTakesProbabilitiesAsTheyAre()
    {
        var decoder = HeadDecoder.Create(TestHeads.Spec("class", "classification"), Shapes);

        var result = Assert.IsType<ClassificationResult>(decoder.Decode([0.1f, 0.7f, 0.2f], DecodeContext.None));

        Assert.Equal(("square", 1, 0.7f), (result.Label, result.Index, result.Probability));
        Assert.Equal([0.1f, 0.7f, 0.2f], result.Probabilities.Values);
    }

    [Fact]
    public void SigmoidActivationScoresEachClassIndependently()
    {
        var decoder = HeadDecoder.Create(TestHeads.Spec("class", "classification", "sigmoid"), ["x", "y"]);

        var result = Assert.IsType<ClassificationResult>(decoder.Decode([0f, 2f], DecodeContext.None));

        // sigmoid(0) = 0.5, sigmoid(2) = 1 / (1 + e⁻²) = 0.8807971; they need not sum to one.
        TestHeads.Near(0.5, result.Probabilities["x"]);
        TestHeads.Near(0.8807971, result.Probabilities["y"]);
        Assert.Equal("y", result.Label);
    }

    [Fact]
    public void WithoutALabelsFileClassesAreNamedByIndex()
    {
        var decoder = HeadDecoder.Create(TestHeads.Spec("class", "classification", "softmax"));

        var result = Assert.IsType<ClassificationResult>(decoder.Decode([0f, 0f, 4f], DecodeContext.None));

        Assert.Equal(["0", "1", "2"], result.Probabilities.Keys);
        Assert.Equal(("2", 2), (result.Label, result.Index));
    }

    [Fact]
    public void ProbabilitiesKeepTheLabelsFileOrder()
    {
        var decoder = HeadDecoder.Create(TestHeads.Spec("class", "classification", "softmax"), ["z", "a", "m"]);

        var result = Assert.IsType<ClassificationResult>(decoder.Decode([0f, 1f, 2f], DecodeContext.None));

        Assert.Equal(["z", "a", "m"], result.Probabilities.Keys);
    }
}
