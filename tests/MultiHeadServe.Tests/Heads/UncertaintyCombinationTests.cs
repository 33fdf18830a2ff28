using MultiHeadServe.Heads;
using MultiHeadServe.Heads.Losses;
using MultiHeadServe.Models;

namespace MultiHeadServe.Tests.Heads;

public sealed class UncertaintyCombinationTests
{
    private static readonly HeadSpec ClassHead = TestHeads.Spec("class", "classification", "softmax") with { Loss = "softmax_cross_entropy" };
    private static readonly HeadSpec BoxHead = TestHeads.Spec("bbox", "bbox") with { Loss = "smooth_l1" };
    private static readonly HeadSpec ClickHead = TestHeads.Spec("click", "binary", "sigmoid") with { Loss = "bce" };
    private static readonly HeadSpec DwellHead = TestHeads.Spec("dwell", "regression") with { Loss = "mse" };
    private static readonly HeadSpec[] AllHeads = [ClassHead, BoxHead, ClickHead, DwellHead];

    // One row through every head. Hand-computed losses:
    //   class: logits [1, 2, 3], class 2: log(e + e² + e³) − 3 = 0.40760596
    //   bbox:  smooth L1 of d = [0, 0.25, 0, 2]: (0 + 0.03125 + 0 + 1.5) / 4 = 0.3828125
    //   click: logit 0, label 1: log 2 = 0.69314718
    //   dwell: 1 vs 3: (1 − 3)² = 4
    private static readonly Dictionary<string, OutputTensor> Outputs = new()
    {
        ["class_out"] = TestHeads.Output(ClassHead, [1, 3], 1f, 2f, 3f),
        ["bbox_out"] = TestHeads.Output(BoxHead, [1, 4], 0.25f, 0.5f, 0.5f, 0.75f),
        ["click_out"] = TestHeads.Output(ClickHead, [1], 0f),
        ["dwell_out"] = TestHeads.Output(DwellHead, [1, 1], 1f),
    };

    private static readonly Dictionary<string, HeadLabels> Labels = new()
    {
        ["class"] = HeadLabels.Column(2),
        ["bbox"] = HeadLabels.Numeric([0.25, 0.75, 0.5, 2.75], 1, 4),
        ["click"] = HeadLabels.Column(1),
        ["dwell"] = HeadLabels.Column(3),
    };

    [Fact]
    public void UncertaintyWeightingIsTheTrainingKitsFormPerHeadKind()
    {
        var manifest = new LossSpec
        {
            Combination = "uncertainty",
            LogVariances = new() { ["class"] = -1.2, ["bbox"] = -3.4, ["click"] = 0.5, ["dwell"] = 0 },
        };
        var evaluator = MultiTaskEvaluator.Create(AllHeads, manifest);

        var result = evaluator.Evaluate(Outputs, Labels);

        // Classification and binary: exp(−s)·L + s/2; regression and bbox: 0.5·exp(−s)·L + s/2.
        //   class: e^1.2·0.40760596 − 0.6       = 3.3201169·0.40760596 − 0.6 = 0.7532999
        //   bbox:  0.5·e^3.4·0.3828125 − 1.7    = 14.9820500·0.3828125 − 1.7 = 4.0353467
        //   click: e^−0.5·0.69314718 + 0.25     = 0.6065307·0.69314718 + 0.25 = 0.6704152
        //   dwell: 0.5·e^0·4 + 0                = 2
        // L = 7.4590305
        var lossClass = Math.Log(Math.E + Math.Exp(2) + Math.Exp(3)) - 3;
        var expected = (Math.Exp(1.2) * lossClass) - 0.6
            + (0.5 * Math.Exp(3.4) * 0.3828125) - 1.7
            + (Math.Exp(-0.5) * Math.Log(2)) + 0.25
            + (0.5 * 4);
        TestHeads.Relative(expected, result.Loss, 1e-12);
        TestHeads.Near(7.4590305, result.Loss);

        Assert.Equal("uncertainty", result.Combination);
        TestHeads.Relative(Math.Exp(1.2), result.Heads["class"].Weight, 1e-12);
        TestHeads.Relative(0.5 * Math.Exp(3.4), result.Heads["bbox"].Weight, 1e-12);
        TestHeads.Relative(Math.Exp(-0.5), result.Heads["click"].Weight, 1e-12);
        Assert.Equal(0.5, result.Heads["dwell"].Weight);
        Assert.Equal(-3.4, result.Heads["bbox"].LogVariance);
        TestHeads.Relative((0.5 * Math.Exp(3.4) * 0.3828125) - 1.7, result.Heads["bbox"].Contribution, 1e-12);
        TestHeads.Relative(lossClass, result.Heads["class"].Loss, 1e-12);
    }

    [Fact]
    public void MultilabelHeadsUseTheClassificationFactor()
    {
        var tags = TestHeads.Spec("tags", "multilabel", "sigmoid");
        var evaluator = MultiTaskEvaluator.Create([tags], new LossSpec { Combination = "uncertainty", LogVariances = new() { ["tags"] = 1 } });

        var result = evaluator.Evaluate(
            new Dictionary<string, OutputTensor> { ["tags_out"] = TestHeads.Output(tags, [1, 2], 0f, 0f) },
            new Dictionary<string, HeadLabels> { ["tags"] = HeadLabels.Numeric([1, 0], 1, 2) });

        // BCE of logits [0, 0]: log 2 each, mean log 2; 1·e^−1·log 2 + 0.5·1.
        TestHeads.Relative((Math.Exp(-1) * Math.Log(2)) + 0.5, result.Loss, 1e-12);
    }

    [Fact]
    public void SumAddsTheUnweightedLosses()
    {
        var evaluator = MultiTaskEvaluator.Create(AllHeads, new LossSpec { Combination = "sum", Weights = new() { ["class"] = 7 } });

        var result = evaluator.Evaluate(Outputs, Labels);

        // The kit writes weights next to sum; they do not apply. 0.40760596 + 0.3828125 + 0.69314718 + 4.
        var lossClass = Math.Log(Math.E + Math.Exp(2) + Math.Exp(3)) - 3;
        TestHeads.Relative(lossClass + 0.3828125 + Math.Log(2) + 4, result.Loss, 1e-12);
        Assert.All(result.Heads.Values, h => Assert.Equal(1, h.Weight));
    }

    [Fact]
    public void ManifestWeightsMultiplyEachHead()
    {
        var weights = new Dictionary<string, double> { ["class"] = 0.5, ["bbox"] = 2, ["click"] = 0, ["dwell"] = 0.25 };
        var evaluator = MultiTaskEvaluator.Create(AllHeads, new LossSpec { Combination = "weighted", Weights = weights });

        var result = evaluator.Evaluate(Outputs, Labels);

        // 0.5·0.40760596 + 2·0.3828125 + 0·0.69314718 + 0.25·4.
        var lossClass = Math.Log(Math.E + Math.Exp(2) + Math.Exp(3)) - 3;
        TestHeads.Relative((0.5 * lossClass) + (2 * 0.3828125) + 1, result.Loss, 1e-12);
    }

    [Fact]
    public void ASubsetOfHeadsIsCombinedWithoutTheOthers()
    {
        var manifest = new LossSpec
        {
            Combination = "uncertainty",
            LogVariances = new() { ["class"] = -1.2, ["bbox"] = -3.4, ["click"] = 0.5, ["dwell"] = 0 },
        };
        var evaluator = MultiTaskEvaluator.Create(AllHeads, manifest);
        var labels = new Dictionary<string, HeadLabels> { ["dwell"] = Labels["dwell"] };

        var result = evaluator.Evaluate(Outputs, labels, heads: ["dwell"]);

        Assert.Equal(2, result.Loss);
        Assert.Equal(["dwell"], result.Heads.Keys);
    }
}
