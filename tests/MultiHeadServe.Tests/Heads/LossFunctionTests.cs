using MultiHeadServe.Heads;
using MultiHeadServe.Heads.Losses;
using MultiHeadServe.Models;

namespace MultiHeadServe.Tests.Heads;

public sealed class LossFunctionTests
{
    private static readonly string[] Shapes = ["circle", "square", "triangle"];

    [Fact]
    public void MeanSquaredErrorAveragesSquaredDifferences()
    {
        var head = Regression("mse");

        // ((1 − 1.5)² + (2 − 1)²) / 2 = (0.25 + 1) / 2.
        var loss = Loss(head, TestHeads.Output(head, [2], 1f, 2f), HeadLabels.Column(1.5, 1));

        Assert.Equal(0.625, loss);
    }

    [Fact]
    public void MeanAbsoluteErrorAveragesAbsoluteDifferences()
    {
        var head = Regression("mae");

        // (|1 − 1.5| + |2 − 1|) / 2 = (0.5 + 1) / 2.
        var loss = Loss(head, TestHeads.Output(head, [2], 1f, 2f), HeadLabels.Column(1.5, 1));

        Assert.Equal(0.75, loss);
    }

    [Fact]
    public void HuberIsQuadraticBelowDeltaAndLinearAbove()
    {
        var head = Regression("huber");

        // δ = 1; |d| = 0.5, 2, 3: 0.5·0.25 = 0.125; 1·(2 − 0.5) = 1.5; 1·(3 − 0.5) = 2.5; mean 4.125 / 3.
        var loss = Loss(head, TestHeads.Output(head, [3], 0f, 0f, 0f), HeadLabels.Column(0.5, 2, -3));

        TestHeads.Relative(4.125 / 3, loss);
    }

    [Fact]
    public void HuberDeltaIsConfigurable()
    {
        var head = Regression("huber");

        // δ = 2; |d| = 0.5, 2, 3: 0.125; 2·(2 − 1) = 2 (|d| = δ is the linear side); 2·(3 − 1) = 4; mean 6.125 / 3.
        var loss = Loss(head, TestHeads.Output(head, [3], 0f, 0f, 0f), HeadLabels.Column(0.5, 2, -3), options: new LossOptions { HuberDelta = 2 });

        TestHeads.Relative(6.125 / 3, loss);
    }

    [Fact]
    public void SmoothL1IsPyTorchsDefinitionAveragedOverEveryElement()
    {
        var head = Box("smooth_l1");

        // β = 1; d = 0, 0.25, 0, 2: 0; 0.5·0.0625 = 0.03125; 0; 2 − 0.5 = 1.5; mean over 4 elements = 1.53125 / 4.
        var loss = Loss(head, TestHeads.Output(head, [1, 4], 0.25f, 0.5f, 0.5f, 0.75f), HeadLabels.Numeric([0.25, 0.75, 0.5, 2.75], 1, 4));

        Assert.Equal(0.3828125, loss);
    }

    [Fact]
    public void BinaryCrossEntropyFromLogitsMatchesMinusLogSigmoid()
    {
        var head = TestHeads.Spec("click", "binary", "sigmoid") with { Loss = "bce" };
        double Sigmoid(double z) => 1 / (1 + Math.Exp(-z));

        var loss = Loss(head, TestHeads.Output(head, [3, 1], 0f, 2f, -1f), HeadLabels.Numeric([1, 0, 1], 3, 1));

        // −log σ(0) = log 2 = 0.693147; −log(1 − σ(2)) = 2.126928; −log σ(−1) = 1.313262; mean 1.377779.
        var expected = (-Math.Log(Sigmoid(0)) - Math.Log(1 - Sigmoid(2)) - Math.Log(Sigmoid(-1))) / 3;
        TestHeads.Relative(expected, loss, 1e-12);
        TestHeads.Near(1.3777790, loss);
    }

    [Fact]
    public void BinaryCrossEntropyFromLogitsStaysFiniteForLargeLogits()
    {
        var head = TestHeads.Spec("click", "binary", "sigmoid");

        // σ(100) is 1 in double, so log(1 − σ) would be −∞; the stable form gives max(z, 0) − z·y + log(1 + e^−|z|) = 100.
        var loss = Loss(head, TestHeads.Output(head, [1], 100f), HeadLabels.Column(0));

        TestHeads.Relative(100, loss, 1e-15);
    }

    [Fact]
    public void BinaryCrossEntropyFromProbabilities()
    {
        var head = TestHeads.Spec("click", "binary") with { Loss = "bce" };

        // −(1·log 0.75 + 0) and −(0 + 1·log(1 − 0.25)): both −log 0.75 = 0.2876821.
        var loss = Loss(head, TestHeads.Output(head, [2], 0.75f, 0.25f), HeadLabels.Column(1, 0));

        TestHeads.Relative(-Math.Log(0.75), loss, 1e-12);
    }

    [Fact]
    public void BinaryCrossEntropyClampsCertainWrongProbabilities()
    {
        var head = TestHeads.Spec("click", "binary");

        // p = 1 for a negative and p = 0 for a positive: clamped to 1 − 1e-7 and 1e-7, each −log(1e-7) = 16.118096.
        var loss = Loss(head, TestHeads.Output(head, [2], 1f, 0f), HeadLabels.Column(0, 1));

        TestHeads.Relative(-Math.Log(1e-7), loss, 1e-8);
    }

    [Fact]
    public void SoftmaxCrossEntropyFromClassIndices()
    {
        var head = Classification();

        // log Σ e^z = log(e + e² + e³) = 3.4076060; −log p = lse − z: 3.4076060 − 3 = 0.4076060 and 3.4076060 − 1 = 2.4076060.
        var loss = Loss(head, TestHeads.Output(head, [2, 3], 1f, 2f, 3f, 1f, 2f, 3f), HeadLabels.Column(2, 0), Shapes);

        TestHeads.Near((0.4076060 + 2.4076060) / 2, loss);
    }

    [Fact]
    public void SoftmaxCrossEntropyFromClassNames()
    {
        var head = Classification();

        var loss = Loss(head, TestHeads.Output(head, [2, 3], 1f, 2f, 3f, 1f, 2f, 3f), HeadLabels.FromClassNames("triangle", "circle"), Shapes);

        TestHeads.Near((0.4076060 + 2.4076060) / 2, loss);
    }

    [Fact]
    public void SoftmaxCrossEntropyFromOneHotAndSoftRows()
    {
        var head = Classification();
        var output = TestHeads.Output(head, [2, 3], 1f, 2f, 3f, 1f, 2f, 3f);

        var oneHot = Loss(head, output, HeadLabels.Numeric([0, 0, 1, 1, 0, 0], 2, 3), Shapes);
        // Row 0 half circle, half triangle: 0.5·2.4076060 + 0.5·0.4076060 = 1.4076060; row 1 all triangle: 0.4076060.
        var soft = Loss(head, output, HeadLabels.Numeric([0.5, 0, 0.5, 0, 0, 1], 2, 3), Shapes);

        TestHeads.Near((0.4076060 + 2.4076060) / 2, oneHot);
        TestHeads.Near((1.4076060 + 0.4076060) / 2, soft);
    }

    [Fact]
    public void CrossEntropyFromProbabilitiesWhenTheActivationIsNone()
    {
        var head = TestHeads.Spec("class", "classification") with { Loss = "softmax_cross_entropy" };

        // The output already is p: −log 0.5 for class 2, −log 0.25 for class 0; mean (0.6931472 + 1.3862944) / 2.
        var loss = Loss(head, TestHeads.Output(head, [2, 3], 0.25f, 0.25f, 0.5f, 0.25f, 0.25f, 0.5f), HeadLabels.Column(2, 0), Shapes);

        TestHeads.Relative((Math.Log(2) + Math.Log(4)) / 2, loss, 1e-12);
    }

    [Fact]
    public void GeneralizedIouLossOfOverlappingAndIdenticalBoxes()
    {
        var head = Box("giou");

        // Row 0: (0,0)-(2,2) vs (1,1)-(3,3): intersection 1, union 4 + 4 − 1 = 7, enclosing 3·3 = 9,
        // GIoU = 1/7 − (9 − 7)/9 = −0.0793651, loss 1.0793651. Row 1: identical boxes, loss 0. Mean 0.5396825.
        var loss = Loss(head, TestHeads.Output(head, [2, 4], 0f, 0f, 2f, 2f, 0f, 0f, 1f, 1f), HeadLabels.Numeric([1, 1, 3, 3, 0, 0, 1, 1], 2, 4));

        TestHeads.Relative((1 + (2.0 / 9) - (1.0 / 7)) / 2, loss, 1e-12);
    }

    [Fact]
    public void GeneralizedIouLossOfDisjointBoxesExceedsOne()
    {
        var head = Box("giou");

        // (0,0)-(1,1) vs (2,0)-(3,1): IoU 0, enclosing 3·1 = 3, union 2: GIoU = −(3 − 2)/3, loss 4/3.
        var loss = Loss(head, TestHeads.Output(head, [1, 4], 0f, 0f, 1f, 1f), HeadLabels.Numeric([2, 0, 3, 1], 1, 4));

        TestHeads.Relative(4.0 / 3, loss, 1e-12);
    }

    [Theory]
    [InlineData("xywh", new float[] { 0, 0, 2, 2 }, new double[] { 1, 1, 2, 2 })]
    [InlineData("cxcywh", new float[] { 1, 1, 2, 2 }, new double[] { 2, 2, 2, 2 })]
    public void GeneralizedIouLossConvertsBothBoxesToCornersFirst(string format, float[] predicted, double[] truth)
    {
        var head = Box("giou") with { BoxFormat = TestHeads.Parse<BoxFormat>(format) };

        // The same boxes as (0,0)-(2,2) vs (1,1)-(3,3): loss 1 + 2/9 − 1/7.
        var loss = Loss(head, TestHeads.Output(head, [1, 4], predicted), HeadLabels.Numeric(truth, 1, 4));

        TestHeads.Relative(1 + (2.0 / 9) - (1.0 / 7), loss, 1e-12);
    }

    [Fact]
    public void RegressionLossIsInRawSpaceAndMetricsInServedUnits()
    {
        var head = Regression("mse") with { Scale = 10f, Offset = 5f };
        var evaluator = HeadEvaluator.Create(head);

        // Raw [1, 2] serves as [15, 25]. Labels [20, 25] map back to raw (20 − 5)/10 = 1.5 and 2:
        // loss ((1 − 1.5)² + 0) / 2 = 0.125. Served errors −5 and 0: RMSE √(25/2) = 3.5355339, MAE 2.5.
        var result = evaluator.Evaluate(TestHeads.Output(head, [2], 1f, 2f), HeadLabels.Column(20, 25));

        Assert.Equal(0.125, result.Loss);
        TestHeads.Relative(Math.Sqrt(12.5), result.Metrics["rmse"]!.Value, 1e-12);
        Assert.Equal(2.5, result.Metrics["mae"]);
        Assert.Equal(2, result.Rows);
    }

    [Fact]
    public void KernelsAgreeWithTheirDefinitionsOnRandomData()
    {
        // A second, independent spelling of each element-wise loss over many values.
        var random = new Random(7);
        var p = Enumerable.Range(0, 64).Select(_ => (float)((random.NextDouble() * 6) - 3)).ToArray();
        var y = Enumerable.Range(0, 64).Select(_ => (random.NextDouble() * 6) - 3).ToArray();
        var d = p.Zip(y, (a, b) => a - b).ToArray();

        TestHeads.Relative(d.Average(x => x * x), LossFunctions.MeanSquaredError(p, y), 1e-12);
        TestHeads.Relative(d.Average(Math.Abs), LossFunctions.MeanAbsoluteError(p, y), 1e-12);
        TestHeads.Relative(d.Average(x => Math.Abs(x) < 1 ? 0.5 * x * x : Math.Abs(x) - 0.5), LossFunctions.HuberLoss(p, y, 1), 1e-12);
        TestHeads.Relative(d.Average(x => Math.Abs(x) < 0.5 ? x * x : Math.Abs(x) - 0.25), LossFunctions.SmoothL1Loss(p, y, 0.5), 1e-12);
    }

    private static HeadSpec Regression(string loss) => TestHeads.Spec("dwell", "regression") with { Loss = loss };

    private static HeadSpec Box(string loss) => TestHeads.Spec("bbox", "bbox") with { Loss = loss };

    private static HeadSpec Classification() => TestHeads.Spec("class", "classification", "softmax") with { Loss = "softmax_cross_entropy" };

    private static double Loss(HeadSpec head, OutputTensor output, HeadLabels labels, IReadOnlyList<string>? classes = null, LossOptions? options = null) =>
        HeadEvaluator.Create(head, classes, options).Evaluate(output, labels).Loss;
}
