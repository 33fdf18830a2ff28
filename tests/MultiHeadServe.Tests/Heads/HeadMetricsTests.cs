using MultiHeadServe.Heads.Losses;

namespace MultiHeadServe.Tests.Heads;

public sealed class HeadMetricsTests
{
    [Fact]
    public void AucCountsTiedPairsAsOneHalf()
    {
        // Positives score 0.35, 0.8, 0.4; negatives 0.1, 0.4. Pairs won: 0.35 beats 0.1 (1), loses to 0.4 (0);
        // 0.8 beats both (2); 0.4 beats 0.1 (1) and ties 0.4 (0.5). 4.5 of 3·2 = 6 pairs: 0.75.
        // By ranks: 0.1→1, 0.35→2, 0.4 and 0.4→3.5, 0.8→5; positives 2 + 5 + 3.5 = 10.5; (10.5 − 3·4/2) / 6 = 0.75.
        var auc = HeadMetrics.RocAuc([0.1, 0.4, 0.35, 0.8, 0.4], [false, false, true, true, true]);

        Assert.Equal(0.75, auc);
    }

    [Fact]
    public void AucIsOneForAPerfectRankingAndZeroForAReversedOne()
    {
        Assert.Equal(1.0, HeadMetrics.RocAuc([0.1, 0.2, 0.8, 0.9], [false, false, true, true]));
        Assert.Equal(0.0, HeadMetrics.RocAuc([0.9, 0.8, 0.2, 0.1], [false, false, true, true]));
    }

    [Fact]
    public void AucIsNullWithoutBothClassesOrWithOneRow()
    {
        Assert.Null(HeadMetrics.RocAuc([0.1, 0.9], [true, true]));
        Assert.Null(HeadMetrics.RocAuc([0.1, 0.9], [false, false]));
        Assert.Null(HeadMetrics.RocAuc([0.5], [true]));
    }

    [Fact]
    public void BinaryHeadReportsAccuracyAtTheThresholdAndAucFromTheSameRows()
    {
        var head = TestHeads.Spec("click", "binary");
        var evaluator = HeadEvaluator.Create(head);

        // Probabilities 0.1, 0.4, 0.35, 0.8, 0.4 against 0, 0, 1, 1, 1 at threshold 0.5: decisions 0, 0, 0, 1, 0,
        // right on rows 0, 1, 3: accuracy 3/5. AUC 0.75 as worked above.
        var result = evaluator.Evaluate(TestHeads.Output(head, [5], 0.1f, 0.4f, 0.35f, 0.8f, 0.4f), HeadLabels.Column(0, 0, 1, 1, 1));

        Assert.Equal(0.6, result.Metrics["accuracy"]);
        Assert.Equal(0.75, result.Metrics["auc"]);
    }

    [Fact]
    public void BinaryAucIsNullWhenEveryLabelIsPositive()
    {
        var head = TestHeads.Spec("click", "binary", "sigmoid");

        var result = HeadEvaluator.Create(head).Evaluate(TestHeads.Output(head, [2], -1f, 1f), HeadLabels.Column(1, 1));

        Assert.Null(result.Metrics["auc"]);
        Assert.Equal(0.5, result.Metrics["accuracy"]);
    }

    [Fact]
    public void ClassificationAccuracyAndTopKUseTheDecodersOrder()
    {
        var head = TestHeads.Spec("class", "classification", "softmax") with { TopK = 2 };
        float[] logits = [3, 2, 1, 3, 2, 1, 3, 2, 1, 1, 1, 0];

        // Row 0: truth 0 is first (right, in top 2). Row 1: truth 1 second (wrong, in top 2). Row 2: truth 2 third
        // (wrong, not in top 2). Row 3: classes 0 and 1 tie, index 0 wins, so truth 1 is second (wrong, in top 2).
        var result = HeadEvaluator.Create(head).Evaluate(TestHeads.Output(head, [4, 3], logits), HeadLabels.Column(0, 1, 2, 1));

        Assert.Equal(0.25, result.Metrics["accuracy"]);
        Assert.Equal(0.75, result.Metrics["top2Accuracy"]);
    }

    [Fact]
    public void BoxHeadReportsMeanIou()
    {
        var head = TestHeads.Spec("bbox", "bbox");

        // (0,0)-(2,2) vs (1,1)-(3,3): 1/7; identical boxes: 1. Mean (1/7 + 1) / 2 = 0.5714286.
        var result = HeadEvaluator.Create(head).Evaluate(
            TestHeads.Output(head, [2, 4], 0f, 0f, 2f, 2f, 0f, 0f, 1f, 1f),
            HeadLabels.Numeric([1, 1, 3, 3, 0, 0, 1, 1], 2, 4));

        TestHeads.Relative(((1.0 / 7) + 1) / 2, result.Metrics["meanIou"]!.Value, 1e-12);
    }

    [Fact]
    public void MultilabelReportsPerLabelAccuracyAndExactMatch()
    {
        var head = TestHeads.Spec("tags", "multilabel");

        // Decisions at 0.5: [1, 0, 1] and [0, 0, 1] against [1, 0, 0] and [0, 0, 1]: 5 of 6 labels right, 1 of 2 rows exact.
        var result = HeadEvaluator.Create(head).Evaluate(
            TestHeads.Output(head, [2, 3], 0.9f, 0.1f, 0.6f, 0.2f, 0.3f, 0.7f),
            HeadLabels.Numeric([1, 0, 0, 0, 0, 1], 2, 3));

        TestHeads.Relative(5.0 / 6, result.Metrics["labelAccuracy"]!.Value, 1e-12);
        Assert.Equal(0.5, result.Metrics["exactMatch"]);
    }

    [Fact]
    public void EmbeddingHeadsHaveALossOnlyWhenTheManifestNamesOne()
    {
        var head = TestHeads.Spec("vector", "embedding");

        var error = Assert.Throws<MultiHeadServe.Heads.HeadSpecException>(() => HeadEvaluator.Create(head));
        var withLoss = HeadEvaluator.Create(head with { Loss = "mse" })
            .Evaluate(TestHeads.Output(head, [1, 2], 1f, 2f), HeadLabels.Numeric([1, 0], 1, 2));

        Assert.Equal("loss", error.Field);
        Assert.Equal(2, withLoss.Loss);
        Assert.Empty(withLoss.Metrics);
    }

    [Theory]
    [InlineData("classification", "mse")]
    [InlineData("regression", "bce")]
    [InlineData("bbox", "softmax_cross_entropy")]
    [InlineData("binary", "giou")]
    public void ALossThatDoesNotFitTheKindIsAManifestError(string kind, string loss)
    {
        var error = Assert.Throws<MultiHeadServe.Heads.HeadSpecException>(
            () => HeadEvaluator.Create(TestHeads.Spec("h", kind) with { Loss = loss }));

        Assert.Equal(("h", "loss"), (error.Head, error.Field));
        Assert.Contains($"loss '{loss}' does not apply to a {kind} head", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnUnknownLossIsAManifestError()
    {
        var error = Assert.Throws<MultiHeadServe.Heads.HeadSpecException>(
            () => HeadEvaluator.Create(TestHeads.Spec("h", "regression") with { Loss = "l2" }));

        Assert.Contains("unknown loss 'l2'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KindsWithoutALossNameGetTheTrainingKitsDefaults()
    {
        Assert.Equal("softmax_cross_entropy", HeadEvaluator.Create(TestHeads.Spec("c", "classification", "softmax")).LossFunction);
        Assert.Equal("bce", HeadEvaluator.Create(TestHeads.Spec("b", "binary", "sigmoid")).LossFunction);
        Assert.Equal("mse", HeadEvaluator.Create(TestHeads.Spec("r", "regression")).LossFunction);
        Assert.Equal("smooth_l1", HeadEvaluator.Create(TestHeads.Spec("x", "bbox")).LossFunction);
        Assert.False(HeadEvaluator.HasLoss(TestHeads.Spec("e", "embedding")));

        // Independent sigmoids are not a softmax: such a head is served but not scored unless it names a loss.
        Assert.False(HeadEvaluator.HasLoss(TestHeads.Spec("c", "classification", "sigmoid")));
    }
}
