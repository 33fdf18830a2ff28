using System.Text.Json;
using System.Text.Json.Nodes;
using MultiHeadServe.Heads;
using MultiHeadServe.Heads.Losses;
using MultiHeadServe.Models;

namespace MultiHeadServe.Tests.Heads;

public sealed class LossCombinationTests
{
    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);

    private static readonly HeadSpec HeadA = TestHeads.Spec("a", "regression");
    private static readonly HeadSpec HeadB = TestHeads.Spec("b", "regression");
    private static readonly HeadSpec HeadC = TestHeads.Spec("c", "binary", "sigmoid");
    private static readonly HeadSpec Vector = TestHeads.Spec("v", "embedding");

    private static readonly Dictionary<string, OutputTensor> Outputs = new()
    {
        ["a_out"] = TestHeads.Output(HeadA, [1], 1f),
        ["b_out"] = TestHeads.Output(HeadB, [1], 2f),
        ["c_out"] = TestHeads.Output(HeadC, [1], 0f),
        ["v_out"] = TestHeads.Output(Vector, [1, 2], 0f, 1f),
    };

    private static readonly Dictionary<string, HeadLabels> Labels = new()
    {
        ["a"] = HeadLabels.Column(0),
        ["b"] = HeadLabels.Column(0),
        ["c"] = HeadLabels.Column(1),
    };

    [Theory]
    [InlineData(-0.1)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public void AlphaOutsideZeroToOneIsARequestError(double alpha)
    {
        var error = Assert.Throws<EvaluationRequestException>(() => LossCombination.WithAlpha(alpha));

        Assert.Equal("alpha", error.Field);
        Assert.StartsWith("alpha must lie in [0, 1]", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AlphaNeedsExactlyTwoHeads()
    {
        var evaluator = MultiTaskEvaluator.Create([HeadA, HeadB, HeadC], loss: null);

        var error = Assert.Throws<EvaluationRequestException>(() => evaluator.Evaluate(Outputs, Labels, combination: LossCombination.WithAlpha(0.5)));

        Assert.Equal("alpha", error.Field);
        Assert.Contains("exactly two heads, but 3 are evaluated (a, b, c)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RequestWeightsMultiplyEachHead()
    {
        var evaluator = MultiTaskEvaluator.Create([HeadA, HeadB, HeadC], loss: null);

        var result = evaluator.Evaluate(Outputs, Labels, combination: LossCombination.WithWeights(new Dictionary<string, double> { ["a"] = 3, ["b"] = 0.5, ["c"] = 2 }));

        // MSE 1, MSE 4, BCE log 2: 3·1 + 0.5·4 + 2·log 2.
        TestHeads.Relative(5 + (2 * Math.Log(2)), result.Loss, 1e-12);
    }

    [Fact]
    public void ANegativeWeightIsARequestError()
    {
        var error = Assert.Throws<EvaluationRequestException>(
            () => LossCombination.WithWeights(new Dictionary<string, double> { ["a"] = -1 }));

        Assert.Equal("weights.a", error.Field);
    }

    [Fact]
    public void AMissingRequestWeightNamesTheHead()
    {
        var evaluator = MultiTaskEvaluator.Create([HeadA, HeadB], loss: null);
        var labels = new Dictionary<string, HeadLabels> { ["a"] = Labels["a"], ["b"] = Labels["b"] };

        var error = Assert.Throws<EvaluationRequestException>(
            () => evaluator.Evaluate(Outputs, labels, combination: LossCombination.WithWeights(new Dictionary<string, double> { ["a"] = 1 })));

        Assert.Equal("weights.b", error.Field);
    }

    [Fact]
    public void ARequestWeightForAHeadNotEvaluatedIsARequestError()
    {
        var evaluator = MultiTaskEvaluator.Create([HeadA, HeadB], loss: null);
        var labels = new Dictionary<string, HeadLabels> { ["a"] = Labels["a"] };

        var error = Assert.Throws<EvaluationRequestException>(
            () => evaluator.Evaluate(Outputs, labels, ["a"], LossCombination.WithWeights(new Dictionary<string, double> { ["a"] = 1, ["b"] = 1 })));

        Assert.Equal("weights.b", error.Field);
    }

    [Fact]
    public void UnknownAndLosslessHeadsCannotBeEvaluated()
    {
        var evaluator = MultiTaskEvaluator.Create([HeadA, Vector], loss: null);

        var unknown = Assert.Throws<EvaluationRequestException>(() => evaluator.Evaluate(Outputs, Labels, ["z"]));
        var lossless = Assert.Throws<EvaluationRequestException>(() => evaluator.Evaluate(Outputs, Labels, ["v"]));

        Assert.Equal(("heads", "there is no head 'z'; evaluable heads: a"), (unknown.Field, unknown.Message));
        Assert.Equal(("heads", "head 'v' has no loss and cannot be evaluated; evaluable heads: a"), (lossless.Field, lossless.Message));
        Assert.Equal(["a"], evaluator.HeadNames);
    }

    [Fact]
    public void AModelWithoutAnyLossHasNothingToEvaluate()
    {
        var evaluator = MultiTaskEvaluator.Create([Vector], loss: null);

        var error = Assert.Throws<EvaluationRequestException>(() => evaluator.Evaluate(Outputs, new Dictionary<string, HeadLabels>()));

        Assert.Equal("heads", error.Field);
    }

    [Fact]
    public void AnUnknownManifestCombinationIsALoadError()
    {
        var error = Assert.Throws<LossSpecException>(() => MultiTaskEvaluator.Create([HeadA], new LossSpec { Combination = "pcgrad" }));

        Assert.Equal("loss.combination", error.Field);
        Assert.Contains("unknown combination 'pcgrad'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ManifestWeightingWithoutWeightsIsALoadError()
    {
        var error = Assert.Throws<LossSpecException>(() => MultiTaskEvaluator.Create([HeadA], new LossSpec { Combination = "weighted" }));

        Assert.Equal("loss.weights", error.Field);
    }

    [Fact]
    public void ManifestUncertaintyMissingAHeadsLogVarianceIsALoadError()
    {
        var spec = new LossSpec { Combination = "uncertainty", LogVariances = new() { ["a"] = 0.1 } };

        var error = Assert.Throws<LossSpecException>(() => MultiTaskEvaluator.Create([HeadA, HeadB], spec));

        Assert.Equal("loss.logVariances.b", error.Field);
        Assert.Contains("no log-variance for head 'b'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ManifestWeightsForAnUnknownHeadAreALoadError()
    {
        var spec = new LossSpec { Combination = "weighted", Weights = new() { ["a"] = 1, ["typo"] = 1 } };

        var error = Assert.Throws<LossSpecException>(() => MultiTaskEvaluator.Create([HeadA], spec));

        Assert.Equal("loss.weights.typo", error.Field);
    }

    [Fact]
    public void UncertaintyOverAnEmbeddingHeadHasNoFactorAndIsALoadError()
    {
        var spec = new LossSpec { Combination = "uncertainty", LogVariances = new() { ["v"] = 0 } };

        var error = Assert.Throws<LossSpecException>(() => MultiTaskEvaluator.Create([Vector with { Loss = "mse" }], spec));

        Assert.Equal("loss.combination", error.Field);
        Assert.Contains("no likelihood factor for embedding head 'v'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EvaluationResultSerialisesForClients()
    {
        var evaluator = MultiTaskEvaluator.Create([HeadA, HeadB], loss: null);
        var labels = new Dictionary<string, HeadLabels> { ["a"] = Labels["a"], ["b"] = Labels["b"] };

        var result = evaluator.Evaluate(Outputs, labels, combination: LossCombination.WithAlpha(0.25));
        var json = JsonSerializer.Serialize(result, Web);

        // 0.25·1 + 0.75·4 = 3.25.
        Assert.Equal(
            JsonNode.Parse("""
            {
              "loss": 3.25, "combination": "weighted", "alpha": 0.25,
              "heads": {
                "a": { "loss": 1, "lossFunction": "mse", "weight": 0.25, "contribution": 0.25, "metrics": { "rmse": 1, "mae": 1 }, "rows": 1 },
                "b": { "loss": 4, "lossFunction": "mse", "weight": 0.75, "contribution": 3, "metrics": { "rmse": 2, "mae": 2 }, "rows": 1 }
              }
            }
            """)!.ToJsonString(),
            json);
    }
}
