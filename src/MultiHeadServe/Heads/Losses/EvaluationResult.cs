using System.Text.Json.Serialization;

namespace MultiHeadServe.Heads.Losses;

/// <summary>The answer to an evaluation request: the combined loss and every evaluated head's share of it.</summary>
/// <param name="Loss">The combined loss L.</param>
/// <param name="Combination">sum, weighted or uncertainty.</param>
/// <param name="Alpha">The first head's weight when two heads were weighted by one alpha; absent otherwise.</param>
/// <param name="Heads">Each evaluated head, keyed by name, in evaluation order.</param>
public sealed record EvaluationResult(
    double Loss,
    string Combination,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? Alpha,
    IReadOnlyDictionary<string, HeadEvaluationResult> Heads);

/// <summary>One head's loss, how it entered the combined loss, and its metrics.</summary>
/// <param name="Loss">The head's unweighted loss L_i (mean over the batch, in the head's raw output space).</param>
/// <param name="LossFunction">The loss it was scored with, e.g. <c>smooth_l1</c>.</param>
/// <param name="Weight">The factor L_i was multiplied by: 1 (sum), w_i or α (weighted), c_i·exp(−s_i) (uncertainty).</param>
/// <param name="LogVariance">s_i under uncertainty weighting (which also adds 0.5·s_i); absent otherwise.</param>
/// <param name="Contribution">What the head added to the combined loss.</param>
/// <param name="Metrics">
/// classification: <c>accuracy</c>, <c>top{k}Accuracy</c>; binary: <c>accuracy</c>, <c>auc</c> (null unless both classes
/// occur); multilabel: <c>labelAccuracy</c>, <c>exactMatch</c>; regression: <c>rmse</c>, <c>mae</c> (served units);
/// bbox: <c>meanIou</c>; embedding: none.
/// </param>
/// <param name="Rows">The number of rows scored.</param>
public sealed record HeadEvaluationResult(
    double Loss,
    string LossFunction,
    double Weight,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? LogVariance,
    double Contribution,
    IReadOnlyDictionary<string, double?> Metrics,
    int Rows);
