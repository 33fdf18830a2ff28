using MultiHeadServe.Heads;
using MultiHeadServe.Heads.Losses;

namespace MultiHeadServe.Tests.Heads;

public sealed class LabelAlignmentTests
{
    [Fact]
    public void ColumnLabelsScoreAgainstAFlatOutputRowByRow()
    {
        var head = TestHeads.Spec("dwell", "regression") with { Loss = "mse" };

        // Labels (2, 1) against output (2,): ((1 − 1.5)² + (2 − 1)²) / 2.
        var loss = Loss(head, TestHeads.Output(head, [2], 1f, 2f), HeadLabels.Numeric([1.5, 1], 2, 1));

        Assert.Equal(0.625, loss);
    }

    [Fact]
    public void FlatLabelsScoreAgainstAColumnOutputRowByRow()
    {
        var head = TestHeads.Spec("dwell", "regression") with { Loss = "mse" };

        // Labels (2,) against output (2, 1): the same pairs, the same 0.625.
        var loss = Loss(head, TestHeads.Output(head, [2, 1], 1f, 2f), HeadLabels.Column(1.5, 1));

        Assert.Equal(0.625, loss);
    }

    [Fact]
    public void ColumnAgainstFlatIsNeverBroadcastToEveryPair()
    {
        var head = TestHeads.Spec("dwell", "regression") with { Loss = "mse" };

        var loss = Loss(head, TestHeads.Output(head, [2], 1f, 2f), HeadLabels.Numeric([1.5, 1], 2, 1));

        // Broadcasting (2, 1) − (2,) would score the 2 × 2 matrix of all pairs:
        // ((1 − 1.5)² + (1 − 1)² + (2 − 1.5)² + (2 − 1)²) / 4 = (0.25 + 0 + 0.25 + 1) / 4 = 0.375.
        double broadcast = 0;
        foreach (var output in new[] { 1.0, 2.0 })
        {
            foreach (var label in new[] { 1.5, 1.0 })
            {
                broadcast += (output - label) * (output - label) / 4;
            }
        }

        Assert.Equal(0.375, broadcast);
        Assert.NotEqual(broadcast, loss);
        Assert.Equal(0.625, loss);
    }

    [Fact]
    public void BinaryColumnLabelsAgainstFlatLogitsAreAlignedToo()
    {
        var head = TestHeads.Spec("click", "binary", "sigmoid");

        // −log σ(0) and −log(1 − σ(0)): both log 2, whichever way the trailing 1 sits.
        var flatOutput = Loss(head, TestHeads.Output(head, [2], 0f, 0f), HeadLabels.Numeric([1, 0], 2, 1));
        var columnOutput = Loss(head, TestHeads.Output(head, [2, 1], 0f, 0f), HeadLabels.Column(1, 0));

        TestHeads.Relative(Math.Log(2), flatOutput, 1e-12);
        TestHeads.Relative(Math.Log(2), columnOutput, 1e-12);
    }

    [Fact]
    public void ClassIndicesMayComeAsAColumn()
    {
        var head = TestHeads.Spec("class", "classification", "softmax");

        // Class 2 of logits [1, 2, 3]: log(e + e² + e³) − 3 = 0.4076060.
        var loss = Loss(head, TestHeads.Output(head, [1, 3], 1f, 2f, 3f), HeadLabels.Numeric([2], 1, 1));

        TestHeads.Near(0.4076060, loss);
    }

    [Fact]
    public void TrailingOnesAreDroppedOnBothSides()
    {
        Assert.True(LabelAlignment.SameRowShape([], [1]));
        Assert.True(LabelAlignment.SameRowShape([1, 1], []));
        Assert.True(LabelAlignment.SameRowShape([4], [4, 1]));
        Assert.False(LabelAlignment.SameRowShape([1, 4], [4]));
        Assert.False(LabelAlignment.SameRowShape([2, 2], [4]));
    }

    [Fact]
    public void TheSameValuesInAnotherRowShapeAreRefused()
    {
        var head = TestHeads.Spec("bbox", "bbox");

        // Four values per row either way, but [2, 2] is not the output's [4]: no silent reshaping.
        var error = Assert.Throws<LabelException>(
            () => Loss(head, TestHeads.Output(head, [1, 4], 0f, 0f, 1f, 1f), HeadLabels.Numeric([0, 0, 1, 1], 1, 2, 2)));

        Assert.Equal("labels.bbox", error.Field);
    }

    private static double Loss(Models.HeadSpec head, OutputTensor output, HeadLabels labels) =>
        HeadEvaluator.Create(head).Evaluate(output, labels).Loss;
}
