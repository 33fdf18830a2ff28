using MultiHeadServe.Heads;
using MultiHeadServe.Heads.Losses;
using MultiHeadServe.Models;

namespace MultiHeadServe.Tests.Heads;

/// <summary>
/// The canonical case: out_a and out_b come from one forward pass, L_a = MSE(out_a, y_a),
/// L_b = MSE(out_b, y_b) and L = α·L_a + (1 − α)·L_b.
/// </summary>
public sealed class TwoHeadWeightedLossTests
{
    private const int Rows = 6;

    private static readonly HeadSpec HeadA = TestHeads.Spec("a", "regression") with { Loss = "mse" };
    private static readonly HeadSpec HeadB = TestHeads.Spec("b", "regression") with { Loss = "mse" };

    private static readonly double[] LabelsA = [0.5, -1.25, 2, 0.75, -0.5, 1.5];
    private static readonly double[] LabelsB = [3, 2.5, 1.5, 4, 3.25, 2];

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.3)]
    [InlineData(0.5)]
    [InlineData(1.0)]
    public void CombinedLossIsAlphaTimesTheFirstPlusOneMinusAlphaTimesTheSecond(double alpha)
    {
        var (outA, outB) = ForwardPass();
        var evaluator = MultiTaskEvaluator.Create([HeadA, HeadB], loss: null);

        var result = evaluator.Evaluate(
            new Dictionary<string, OutputTensor>
            {
                // Head a answers [N], head b [N, 1]; labels come the other way round.
                ["a_out"] = TestHeads.Output(HeadA, [Rows], outA),
                ["b_out"] = TestHeads.Output(HeadB, [Rows, 1], outB),
            },
            new Dictionary<string, HeadLabels>
            {
                ["a"] = HeadLabels.Numeric(LabelsA, Rows, 1),
                ["b"] = HeadLabels.Column(LabelsB),
            },
            heads: ["a", "b"],
            LossCombination.WithAlpha(alpha));

        // Independently: plain loops over the same numbers.
        double lossA = 0, lossB = 0;
        for (var i = 0; i < Rows; i++)
        {
            lossA += (outA[i] - LabelsA[i]) * (outA[i] - LabelsA[i]);
            lossB += (outB[i] - LabelsB[i]) * (outB[i] - LabelsB[i]);
        }

        lossA /= Rows;
        lossB /= Rows;
        var expected = (alpha * lossA) + ((1 - alpha) * lossB);

        TestHeads.Relative(expected, result.Loss);
        TestHeads.Relative(lossA, result.Heads["a"].Loss);
        TestHeads.Relative(lossB, result.Heads["b"].Loss);
        Assert.Equal((alpha, 1 - alpha), (result.Heads["a"].Weight, result.Heads["b"].Weight));
        Assert.Equal(("weighted", alpha), (result.Combination, result.Alpha));
        Assert.True(lossA > 0.1 && lossB > 0.1 && Math.Abs(lossA - lossB) > 0.1, "the heads' losses must differ for alpha to matter");
    }

    [Fact]
    public void AlphaWeighsTheHeadsInTheOrderTheRequestGives()
    {
        var (outA, outB) = ForwardPass();
        var evaluator = MultiTaskEvaluator.Create([HeadA, HeadB], loss: null);
        var outputs = new Dictionary<string, OutputTensor>
        {
            ["a_out"] = TestHeads.Output(HeadA, [Rows], outA),
            ["b_out"] = TestHeads.Output(HeadB, [Rows], outB),
        };
        var labels = new Dictionary<string, HeadLabels> { ["a"] = HeadLabels.Column(LabelsA), ["b"] = HeadLabels.Column(LabelsB) };

        var ab = evaluator.Evaluate(outputs, labels, ["a", "b"], LossCombination.WithAlpha(0.3));
        var ba = evaluator.Evaluate(outputs, labels, ["b", "a"], LossCombination.WithAlpha(0.3));

        TestHeads.Relative((0.3 * ab.Heads["a"].Loss) + (0.7 * ab.Heads["b"].Loss), ab.Loss);
        TestHeads.Relative((0.3 * ab.Heads["b"].Loss) + (0.7 * ab.Heads["a"].Loss), ba.Loss);
        Assert.Equal(["b", "a"], ba.Heads.Keys);
    }

    /// <summary>
    /// A tiny two-head network run once: a shared tanh layer over three features, then one linear unit per
    /// head. Both outputs come from the same hidden activations, as they would from one ONNX run.
    /// </summary>
    private static (float[] A, float[] B) ForwardPass()
    {
        float[,] x = { { 0.5f, -1f, 2f }, { 1f, 0f, -0.5f }, { -2f, 1.5f, 0.25f }, { 0f, 0.5f, 1f }, { 1.5f, -0.5f, -1f }, { -1f, -1f, 0.5f } };
        float[,] trunk = { { 0.3f, -0.2f, 0.5f, 0.1f }, { -0.4f, 0.6f, 0.2f, -0.3f }, { 0.25f, 0.1f, -0.35f, 0.45f } };
        float[] weightsA = [1.2f, -0.7f, 0.4f, 0.9f];
        float[] weightsB = [0.5f, 1.1f, -0.6f, 0.3f];

        var a = new float[Rows];
        var b = new float[Rows];
        for (var r = 0; r < Rows; r++)
        {
            for (var h = 0; h < 4; h++)
            {
                float z = 0;
                for (var f = 0; f < 3; f++)
                {
                    z += x[r, f] * trunk[f, h];
                }

                var hidden = MathF.Tanh(z);
                a[r] += hidden * weightsA[h];
                b[r] += hidden * weightsB[h];
            }

            b[r] += 2.5f;
        }

        return (a, b);
    }
}
