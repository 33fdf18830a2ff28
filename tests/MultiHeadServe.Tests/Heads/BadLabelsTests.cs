using MultiHeadServe.Heads;
using MultiHeadServe.Heads.Losses;
using MultiHeadServe.Models;

namespace MultiHeadServe.Tests.Heads;

public sealed class BadLabelsTests
{
    private static readonly HeadSpec ClassHead = TestHeads.Spec("class", "classification", "softmax") with { Loss = "softmax_cross_entropy" };
    private static readonly HeadSpec BoxHead = TestHeads.Spec("bbox", "bbox") with { Loss = "smooth_l1" };
    private static readonly HeadSpec ClickHead = TestHeads.Spec("click", "binary", "sigmoid");
    private static readonly HeadSpec DwellHead = TestHeads.Spec("dwell", "regression");

    private static readonly MultiTaskEvaluator Evaluator = MultiTaskEvaluator.Create(
        [ClassHead, BoxHead, ClickHead, DwellHead],
        loss: null,
        new Dictionary<string, IReadOnlyList<string>> { ["class"] = ["circle", "square", "triangle"] });

    // One run, two rows.
    private static readonly Dictionary<string, OutputTensor> Outputs = new()
    {
        ["class_out"] = TestHeads.Output(ClassHead, [2, 3], 1f, 2f, 3f, 3f, 2f, 1f),
        ["bbox_out"] = TestHeads.Output(BoxHead, [2, 4], 0f, 0f, 1f, 1f, 0.25f, 0.25f, 0.5f, 0.5f),
        ["click_out"] = TestHeads.Output(ClickHead, [2, 1], 0f, 1f),
        ["dwell_out"] = TestHeads.Output(DwellHead, [2], 10f, 20f),
    };

    [Fact]
    public void GoodLabelsEvaluate()
    {
        var result = Evaluator.Evaluate(Outputs, Labels());

        Assert.Equal(["class", "bbox", "click", "dwell"], result.Heads.Keys);
    }

    [Fact]
    public void AMissingHeadIsNamed()
    {
        var labels = Labels();
        labels.Remove("bbox");

        var error = Assert.Throws<LabelException>(() => Evaluator.Evaluate(Outputs, labels));

        Assert.Equal("labels.bbox", error.Field);
        Assert.Contains("no labels for head 'bbox'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LabelsForAHeadTheModelDoesNotHaveAreNamed()
    {
        var labels = Labels();
        labels["colour"] = HeadLabels.Column(1, 2);

        var error = Assert.Throws<LabelException>(() => Evaluator.Evaluate(Outputs, labels));

        Assert.Equal("labels.colour", error.Field);
        Assert.Contains("the model has no such head", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LabelsForAHeadLeftOutOfTheEvaluationAreNamed()
    {
        var labels = Labels();

        var error = Assert.Throws<LabelException>(() => Evaluator.Evaluate(Outputs, labels, heads: ["class", "bbox", "click"]));

        Assert.Equal("labels.dwell", error.Field);
        Assert.Contains("not evaluated", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ClassNamesForANumericHeadAreTheWrongType()
    {
        var labels = Labels();
        labels["dwell"] = HeadLabels.FromClassNames("long", "short");

        var error = Assert.Throws<LabelException>(() => Evaluator.Evaluate(Outputs, labels));

        Assert.Equal("labels.dwell", error.Field);
        Assert.Contains("takes numbers as labels, not class names", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ARowCountThatDiffersFromTheOutputNamesBothCounts()
    {
        var labels = Labels();
        labels["dwell"] = HeadLabels.Column(10, 20, 30);

        var error = Assert.Throws<LabelException>(() => Evaluator.Evaluate(Outputs, labels));

        Assert.Equal(("labels.dwell", "dwell"), (error.Field, error.Head));
        Assert.Equal("head 'dwell' has 2 output rows but 3 label rows", error.Message);
    }

    [Fact]
    public void FewerLabelRowsThanOutputRowsAreRefusedToo()
    {
        var labels = Labels();
        labels["bbox"] = HeadLabels.Numeric([0, 0, 1, 1], 1, 4);

        var error = Assert.Throws<LabelException>(() => Evaluator.Evaluate(Outputs, labels));

        Assert.Equal("head 'bbox' has 2 output rows but 1 label rows", error.Message);
    }

    [Fact]
    public void AClassNameCountThatDiffersFromTheOutputNamesBothCounts()
    {
        var labels = Labels();
        labels["class"] = HeadLabels.FromClassNames("circle");

        var error = Assert.Throws<LabelException>(() => Evaluator.Evaluate(Outputs, labels));

        Assert.Equal("head 'class' has 2 output rows but 1 class names in its labels", error.Message);
    }

    [Fact]
    public void ThreeValuesPerRowForAFourWideBoxAreRefused()
    {
        var labels = Labels();
        labels["bbox"] = HeadLabels.Numeric([0, 0, 1, 0, 0, 1], 2, 3);

        var error = Assert.Throws<LabelException>(() => Evaluator.Evaluate(Outputs, labels));

        Assert.Equal("labels.bbox", error.Field);
        Assert.Contains("output shape [2, 4], 4 values per row", error.Message, StringComparison.Ordinal);
        Assert.Contains("labels have shape [2, 3], 3 values per row", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(double.NaN, "NaN")]
    [InlineData(double.PositiveInfinity, "Infinity")]
    public void NonFiniteLabelsAreNamedWithTheirPosition(double value, string shown)
    {
        var labels = Labels();
        labels["bbox"] = HeadLabels.Numeric([0, 0, 1, 1, 0, value, 1, 1], 2, 4);

        var error = Assert.Throws<LabelException>(() => Evaluator.Evaluate(Outputs, labels));

        Assert.Equal("labels.bbox", error.Field);
        Assert.Equal($"labels.bbox[1][1] is {shown}; labels must be finite numbers", error.Message);
    }

    [Fact]
    public void AnUnknownClassNameListsTheValidLabels()
    {
        var labels = Labels();
        labels["class"] = HeadLabels.FromClassNames("circle", "hexagon");

        var error = Assert.Throws<LabelException>(() => Evaluator.Evaluate(Outputs, labels));

        Assert.Equal("labels.class", error.Field);
        Assert.Equal("labels.class[1] is 'hexagon', not a class of head 'class'; valid labels: circle, square, triangle", error.Message);
    }

    [Theory]
    [InlineData(1.5)]
    [InlineData(3)]
    [InlineData(-1)]
    public void AClassIndexMustBeAnIntegerWithinTheClasses(double index)
    {
        var labels = Labels();
        labels["class"] = HeadLabels.Column(0, index);

        var error = Assert.Throws<LabelException>(() => Evaluator.Evaluate(Outputs, labels));

        Assert.Contains("not a class index of head 'class' (an integer from 0 to 2)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AProbabilityRowMustSumToOne()
    {
        var labels = Labels();
        labels["class"] = HeadLabels.Numeric([0.5, 0.5, 0.5, 0, 0, 1], 2, 3);

        var error = Assert.Throws<LabelException>(() => Evaluator.Evaluate(Outputs, labels));

        Assert.Equal("labels.class[0] sums to 1.5; a probability row must sum to 1", error.Message);
    }

    [Fact]
    public void BinaryTargetsMustBeProbabilities()
    {
        var labels = Labels();
        labels["click"] = HeadLabels.Column(1, 2);

        var error = Assert.Throws<LabelException>(() => Evaluator.Evaluate(Outputs, labels));

        Assert.Equal("labels.click[1] is 2; head 'click' takes targets in [0, 1]", error.Message);
    }

    [Fact]
    public void AShapeThatDisagreesWithTheValuesIsRefused()
    {
        var labels = Labels();
        labels["dwell"] = HeadLabels.Numeric([1, 2, 3], 2);

        var error = Assert.Throws<LabelException>(() => Evaluator.Evaluate(Outputs, labels));

        Assert.Equal("labels.dwell has shape [2], which needs 2 values, but holds 3", error.Message);
    }

    [Fact]
    public void NonFiniteModelOutputIsAServerFaultNotALabelError()
    {
        var outputs = new Dictionary<string, OutputTensor>(Outputs)
        {
            ["dwell_out"] = TestHeads.Output(DwellHead, [2], 10f, float.NaN),
        };

        var error = Assert.Throws<HeadOutputException>(() => Evaluator.Evaluate(outputs, Labels()));

        Assert.Equal("head 'dwell': output 'dwell_out' holds NaN at row 1, column 0", error.Message);
    }

    private static Dictionary<string, HeadLabels> Labels() => new()
    {
        ["class"] = HeadLabels.FromClassNames("triangle", "circle"),
        ["bbox"] = HeadLabels.Numeric([0, 0, 1, 1, 0, 0, 0.5, 0.5], 2, 4),
        ["click"] = HeadLabels.Numeric([0, 1], 2, 1),
        ["dwell"] = HeadLabels.Column(12, 18),
    };
}
