using MultiHeadServe.Heads;

namespace MultiHeadServe.Tests.Heads;

public sealed class HeadDecoderTests
{
    [Fact]
    public void MultilabelAppliesASigmoidPerLabelAndTheThresholdInclusively()
    {
        var decoder = HeadDecoder.Create(TestHeads.Spec("tags", "multilabel", "sigmoid"), ["red", "round", "large"]);

        var result = Assert.IsType<MultilabelResult>(decoder.Decode([0f, 2f, -1f], DecodeContext.None));

        // sigmoid: 0.5 (= threshold 0.5, positive), 0.8807971 (positive), 0.2689414 (negative).
        Assert.Equal(["red", "round"], result.Positive);
        Assert.Equal([true, true, false], result.Labels.Select(l => l.Positive));
        TestHeads.Near(0.8807971, result.Labels[1].Probability);
        TestHeads.Near(0.2689414, result.Labels[2].Probability);
    }

    [Fact]
    public void MultilabelThresholdComesFromTheManifest()
    {
        var spec = TestHeads.Spec("tags", "multilabel", "sigmoid") with { Threshold = 0.6f };
        var decoder = HeadDecoder.Create(spec, ["red", "round", "large"]);

        var result = Assert.IsType<MultilabelResult>(decoder.Decode([0f, 2f, -1f], DecodeContext.None));

        Assert.Equal(["round"], result.Positive);
    }

    [Fact]
    public void MultilabelWithoutActivationReadsProbabilities()
    {
        var decoder = HeadDecoder.Create(TestHeads.Spec("tags", "multilabel"));

        var result = Assert.IsType<MultilabelResult>(decoder.Decode([0.2f, 0.9f], DecodeContext.None));

        Assert.Equal(["1"], result.Positive);
        Assert.Equal([0.2f, 0.9f], result.Labels.Select(l => l.Probability));
    }

    [Fact]
    public void BinarySigmoidOfZeroIsOneHalfAndDecidesPositiveAtThatThreshold()
    {
        var decoder = HeadDecoder.Create(TestHeads.Spec("click", "binary", "sigmoid"));

        var result = Assert.IsType<BinaryResult>(decoder.Decode([0f], DecodeContext.None));

        Assert.Equal(new BinaryResult(0.5f, true, 0.5f), result);
    }

    [Fact]
    public void BinaryDecisionBelowTheThresholdIsNegative()
    {
        var decoder = HeadDecoder.Create(TestHeads.Spec("click", "binary", "sigmoid") with { Threshold = 0.7f });

        var result = Assert.IsType<BinaryResult>(decoder.Decode([0.5f], DecodeContext.None));

        // sigmoid(0.5) = 0.6224593 < 0.7.
        TestHeads.Near(0.6224593, result.Probability);
        Assert.False(result.Decision);
        Assert.Equal(0.7f, result.Threshold);
    }

    [Fact]
    public void BinaryProbabilityEqualToTheThresholdAsShownIsPositive()
    {
        // 0.7 is not exact in float32 or double; the decision compares the values the response shows.
        var decoder = HeadDecoder.Create(TestHeads.Spec("click", "binary") with { Threshold = 0.7f });

        var result = Assert.IsType<BinaryResult>(decoder.Decode([0.7f], DecodeContext.None));

        Assert.Equal(new BinaryResult(0.7f, true, 0.7f), result);
    }

    [Fact]
    public void RegressionAppliesScaleThenOffset()
    {
        var decoder = HeadDecoder.Create(TestHeads.Spec("revenue", "regression") with { Scale = 10f, Offset = -3f });

        var result = Assert.IsType<RegressionResult>(decoder.Decode([2.5f], DecodeContext.None));

        // 2.5 · 10 − 3 = 22.
        Assert.Equal(22f, result.Value);
        Assert.Null(result.Values);
    }

    [Fact]
    public void RegressionScaleAndOffsetMeanTheDecimalsTheManifestWrote()
    {
        var decoder = HeadDecoder.Create(TestHeads.Spec("dwell", "regression") with { Scale = 0.7f });

        var result = Assert.IsType<RegressionResult>(decoder.Decode([11f / 7f], DecodeContext.None));

        // 11/7 · 0.7 = 1.1. Scaling by float32 0.7 (0.69999998807...) instead would give 1.0999999.
        Assert.Equal(1.1f, result.Value);
    }

    [Fact]
    public void RegressionWithSeveralOutputsAnswersWithValues()
    {
        var decoder = HeadDecoder.Create(TestHeads.Spec("position", "regression") with { Scale = 2f, Offset = 1f }, outputWidth: 3);

        var result = Assert.IsType<RegressionResult>(decoder.Decode([0f, 1f, -2f], DecodeContext.None));

        Assert.Null(result.Value);
        Assert.Equal([1f, 3f, -3f], result.Values!);
    }

    [Fact]
    public void EmbeddingKeepsTheVectorAndReportsItsNorm()
    {
        var decoder = HeadDecoder.Create(TestHeads.Spec("vector", "embedding"));

        var result = Assert.IsType<EmbeddingResult>(decoder.Decode([3f, 4f, 12f], DecodeContext.None));

        // √(9 + 16 + 144) = √169 = 13.
        Assert.Equal([3f, 4f, 12f], result.Vector);
        Assert.Equal(13f, result.Norm);
    }
}
