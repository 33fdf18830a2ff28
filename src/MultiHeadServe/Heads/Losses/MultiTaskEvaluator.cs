using MultiHeadServe.Models;

namespace MultiHeadServe.Heads.Losses;

/// <summary>
/// Scores one run of a multi-head model against a request's labels: each head's loss and metrics, and the
/// combined multi-task loss. Built once per model version at load, when every head's loss and the
/// manifest's combination are validated; immutable and thread-safe.
/// </summary>
public sealed class MultiTaskEvaluator
{
    private readonly OrderedDictionary<string, HeadEvaluator> _heads;
    private readonly IReadOnlyList<string> _allHeads;

    private MultiTaskEvaluator(OrderedDictionary<string, HeadEvaluator> heads, IReadOnlyList<string> allHeads, LossCombination combination)
    {
        _heads = heads;
        _allHeads = allHeads;
        DefaultCombination = combination;
    }

    /// <summary>The heads that can be evaluated, in manifest order: every head with a loss or a kind with a default loss.</summary>
    public IReadOnlyList<string> HeadNames => [.. _heads.Keys];

    /// <summary>The manifest's combination, used when a request names none.</summary>
    public LossCombination DefaultCombination { get; }

    /// <summary>Compiles the evaluator of a model.</summary>
    /// <param name="heads">The manifest's heads.</param>
    /// <param name="loss">The manifest's <c>loss</c> section (null: sum).</param>
    /// <param name="labels">The lines of each head's labels file, keyed by head name.</param>
    /// <param name="options">Loss parameters (Huber delta, smooth L1 beta).</param>
    /// <exception cref="HeadSpecException">A head's loss is unknown or does not apply to the head.</exception>
    /// <exception cref="LossSpecException">The combination does not fit the heads.</exception>
    public static MultiTaskEvaluator Create(
        IReadOnlyList<HeadSpec> heads,
        LossSpec? loss,
        IReadOnlyDictionary<string, IReadOnlyList<string>>? labels = null,
        LossOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(heads);
        var evaluators = new OrderedDictionary<string, HeadEvaluator>(StringComparer.Ordinal);
        foreach (var spec in heads)
        {
            if (!HeadEvaluator.HasLoss(spec))
            {
                continue;
            }

            var evaluator = HeadEvaluator.Create(spec, labels?.GetValueOrDefault(spec.Name), options);
            if (!evaluators.TryAdd(spec.Name, evaluator))
            {
                throw new HeadSpecException(spec.Name, "name", "two heads share this name");
            }
        }

        var combination = LossCombination.FromManifest(loss);
        var allHeads = heads.Select(h => h.Name).ToList();
        combination.CheckCovers([.. evaluators.Values], allHeads);
        return new MultiTaskEvaluator(evaluators, allHeads, combination);
    }

    /// <summary>Scores the run's outputs against the labels.</summary>
    /// <param name="outputs">The outputs of the model's single run, keyed by ONNX output name.</param>
    /// <param name="labels">Each evaluated head's labels, keyed by head name.</param>
    /// <param name="heads">The heads to evaluate, in the order alpha weighting reads them; null: every evaluable head in manifest order.</param>
    /// <param name="combination">The request's combination; null: <see cref="DefaultCombination"/>.</param>
    /// <exception cref="LabelException">A head's labels are missing, not for an evaluated head, or do not fit its output.</exception>
    /// <exception cref="EvaluationRequestException">The heads or the combination do not fit the model (field <c>heads</c>, <c>alpha</c>, <c>weights.&lt;head&gt;</c>, ...).</exception>
    /// <exception cref="HeadOutputException">An output is missing from the run or holds NaN or Infinity.</exception>
    public EvaluationResult Evaluate(
        IReadOnlyDictionary<string, OutputTensor> outputs,
        IReadOnlyDictionary<string, HeadLabels> labels,
        IReadOnlyList<string>? heads = null,
        LossCombination? combination = null)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        ArgumentNullException.ThrowIfNull(labels);
        combination ??= DefaultCombination;
        var evaluated = Resolve(heads);
        CheckLabelHeads(labels, evaluated);

        var losses = new List<(HeadEvaluator Head, double Loss)>(evaluated.Count);
        var scored = new List<HeadEvaluation>(evaluated.Count);
        foreach (var head in evaluated)
        {
            if (!labels.TryGetValue(head.HeadName, out var headLabels) || headLabels is null)
            {
                throw new LabelException(head.HeadName, $"no labels for head '{head.HeadName}'; every evaluated head needs labels");
            }

            if (!outputs.TryGetValue(head.OutputName, out var output))
            {
                throw new HeadOutputException(head.HeadName, $"the run produced no output '{head.OutputName}'");
            }

            var evaluation = head.Evaluate(output, headLabels);
            losses.Add((head, evaluation.Loss));
            scored.Add(evaluation);
        }

        var combined = combination.Combine(losses);
        var results = new OrderedDictionary<string, HeadEvaluationResult>(StringComparer.Ordinal);
        for (var i = 0; i < evaluated.Count; i++)
        {
            var term = combined.Terms[i];
            results.Add(
                evaluated[i].HeadName,
                new HeadEvaluationResult(scored[i].Loss, evaluated[i].LossFunction, term.Weight, term.LogVariance, term.Contribution, scored[i].Metrics, scored[i].Rows));
        }

        return new EvaluationResult(combined.Total, combination.Kind, combination.Alpha, results);
    }

    private List<HeadEvaluator> Resolve(IReadOnlyList<string>? heads)
    {
        if (heads is null)
        {
            return _heads.Count > 0
                ? [.. _heads.Values]
                : throw new EvaluationRequestException("heads", "the model has no head with a loss to evaluate");
        }

        if (heads.Count == 0)
        {
            throw new EvaluationRequestException("heads", "name at least one head to evaluate, or omit heads to evaluate them all");
        }

        var resolved = new List<HeadEvaluator>(heads.Count);
        foreach (var name in heads)
        {
            if (!_heads.TryGetValue(name, out var head))
            {
                throw new EvaluationRequestException(
                    "heads",
                    _allHeads.Contains(name)
                        ? $"head '{name}' has no loss and cannot be evaluated; evaluable heads: {string.Join(", ", _heads.Keys)}"
                        : $"there is no head '{name}'; evaluable heads: {string.Join(", ", _heads.Keys)}");
            }

            if (resolved.Contains(head))
            {
                throw new EvaluationRequestException("heads", $"head '{name}' is listed twice");
            }

            resolved.Add(head);
        }

        return resolved;
    }

    private void CheckLabelHeads(IReadOnlyDictionary<string, HeadLabels> labels, List<HeadEvaluator> evaluated)
    {
        foreach (var name in labels.Keys)
        {
            if (!evaluated.Exists(h => h.HeadName == name))
            {
                throw new LabelException(
                    name,
                    _heads.ContainsKey(name) || _allHeads.Contains(name)
                        ? $"labels are given for head '{name}', which is not evaluated; evaluated heads: {string.Join(", ", evaluated.Select(h => h.HeadName))}"
                        : $"labels are given for head '{name}', but the model has no such head; heads: {string.Join(", ", _allHeads)}");
            }
        }
    }
}
