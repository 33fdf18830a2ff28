using MultiHeadServe.Models;

namespace MultiHeadServe.Heads.Losses;

/// <summary>
/// How the heads' losses L_i add up to one number, exactly as the training kit combines them:
/// <list type="bullet">
/// <item><c>sum</c>: L = Σ L_i.</item>
/// <item><c>weighted</c> with <see cref="Alpha"/>: L = α·L_a + (1 − α)·L_b for exactly two heads, a and b in
/// evaluation order.</item>
/// <item><c>weighted</c> with <see cref="Weights"/>: L = Σ w_i·L_i (no renormalisation when a subset of heads
/// is evaluated).</item>
/// <item><c>uncertainty</c> (Kendall, Gal and Cipolla, 2018) with learned log-variances s_i:
/// L = Σ c_i·exp(−s_i)·L_i + 0.5·s_i, c_i = 0.5 for regression and bbox heads, 1 for classification,
/// binary and multilabel heads.</item>
/// </list>
/// Immutable. Factories validate their arguments; a combination built from a request reports problems as
/// <see cref="EvaluationRequestException"/> (a 400), one built from a manifest as <see cref="LossSpecException"/>.
/// </summary>
public sealed record LossCombination
{
    /// <summary>The <c>sum</c> combination.</summary>
    public const string SumName = "sum";

    /// <summary>The <c>weighted</c> combination.</summary>
    public const string WeightedName = "weighted";

    /// <summary>The <c>uncertainty</c> combination.</summary>
    public const string UncertaintyName = "uncertainty";

    private readonly bool _fromManifest;

    private LossCombination(string kind, double? alpha, IReadOnlyDictionary<string, double>? weights, IReadOnlyDictionary<string, double>? logVariances, bool fromManifest)
    {
        Kind = kind;
        Alpha = alpha;
        Weights = weights;
        LogVariances = logVariances;
        _fromManifest = fromManifest;
    }

    /// <summary>sum, weighted or uncertainty.</summary>
    public string Kind { get; }

    /// <summary>The first head's weight when two heads are weighted by one alpha.</summary>
    public double? Alpha { get; }

    /// <summary>Per-head weights (weighted).</summary>
    public IReadOnlyDictionary<string, double>? Weights { get; }

    /// <summary>Per-head learned log-variances s_i (uncertainty).</summary>
    public IReadOnlyDictionary<string, double>? LogVariances { get; }

    /// <summary>L = Σ L_i.</summary>
    public static LossCombination Sum { get; } = new(SumName, null, null, null, fromManifest: false);

    /// <summary>L = α·L_a + (1 − α)·L_b over exactly two heads, in evaluation order.</summary>
    /// <exception cref="EvaluationRequestException">Alpha is not within [0, 1] (field <c>alpha</c>).</exception>
    public static LossCombination WithAlpha(double alpha) =>
        double.IsFinite(alpha) && alpha is >= 0 and <= 1
            ? new(WeightedName, alpha, null, null, fromManifest: false)
            : throw new EvaluationRequestException("alpha", $"alpha must lie in [0, 1], not {HeadMath.Show(alpha)}");

    /// <summary>L = Σ w_i·L_i; every evaluated head needs a weight.</summary>
    /// <exception cref="EvaluationRequestException">A weight is negative or not finite (field <c>weights.&lt;head&gt;</c>).</exception>
    public static LossCombination WithWeights(IReadOnlyDictionary<string, double> weights) =>
        new(WeightedName, null, CheckWeights(weights, RequestError), null, fromManifest: false);

    /// <summary>L = Σ c_i·exp(−s_i)·L_i + 0.5·s_i; every evaluated head needs its s_i.</summary>
    /// <exception cref="EvaluationRequestException">A log-variance is not finite (field <c>logVariances.&lt;head&gt;</c>).</exception>
    public static LossCombination WithLogVariances(IReadOnlyDictionary<string, double> logVariances) =>
        new(UncertaintyName, null, null, CheckLogVariances(logVariances, RequestError), fromManifest: false);

    /// <summary>The manifest's <c>loss</c> section; no section means <c>sum</c>.</summary>
    /// <exception cref="LossSpecException">The section is invalid.</exception>
    public static LossCombination FromManifest(LossSpec? spec)
    {
        if (spec is null)
        {
            return new(SumName, null, null, null, fromManifest: true);
        }

        switch (spec.Combination)
        {
            case SumName:
                // The kit writes weights of 1 next to sum; they change nothing.
                return new(SumName, null, null, null, fromManifest: true);
            case WeightedName:
                return new(WeightedName, null, CheckWeights(spec.Weights ?? MissingInManifest("weights"), ManifestError), null, fromManifest: true);
            case UncertaintyName:
                return new(UncertaintyName, null, null, CheckLogVariances(spec.LogVariances ?? MissingInManifest("logVariances"), ManifestError), fromManifest: true);
            default:
                throw new LossSpecException(
                    "loss.combination", $"unknown combination '{spec.Combination}'; expected one of {SumName}, {WeightedName}, {UncertaintyName}");
        }

        Dictionary<string, double> MissingInManifest(string field) =>
            throw new LossSpecException($"loss.{field}", $"the {spec.Combination} combination needs loss.{field}");
    }

    /// <summary>Checks at model load that a manifest's combination covers every head that can be evaluated.</summary>
    internal void CheckCovers(IReadOnlyList<HeadEvaluator> heads, IReadOnlyCollection<string> allHeads)
    {
        var names = heads.Select(h => h.HeadName).ToHashSet(StringComparer.Ordinal);
        foreach (var (field, values) in new[] { ("weights", Weights), ("logVariances", LogVariances) })
        {
            foreach (var name in values?.Keys ?? [])
            {
                if (!names.Contains(name))
                {
                    throw new LossSpecException(
                        $"loss.{field}.{name}",
                        allHeads.Contains(name) ? $"head '{name}' has no loss to weigh" : $"there is no head '{name}'; heads: {string.Join(", ", allHeads)}");
                }
            }
        }

        Combine(heads.Select(h => (h, 0.0)).ToList());
    }

    /// <summary>Weighs the heads' losses, in evaluation order.</summary>
    internal CombinedLoss Combine(IReadOnlyList<(HeadEvaluator Head, double Loss)> losses)
    {
        var terms = new CombinedTerm[losses.Count];
        if (Alpha is not null && losses.Count != 2)
        {
            throw Error(
                "alpha",
                $"alpha weighs exactly two heads, but {losses.Count} are evaluated ({string.Join(", ", losses.Select(l => l.Head.HeadName))}); give per-head weights instead");
        }

        if (!_fromManifest)
        {
            var evaluated = losses.Select(l => l.Head.HeadName).ToHashSet(StringComparer.Ordinal);
            foreach (var (field, values) in new[] { ("weights", Weights), ("logVariances", LogVariances) })
            {
                var stray = values?.Keys.FirstOrDefault(name => !evaluated.Contains(name));
                if (stray is not null)
                {
                    throw Error($"{field}.{stray}", $"head '{stray}' is not evaluated; evaluated heads: {string.Join(", ", evaluated)}");
                }
            }
        }

        double total = 0;
        for (var i = 0; i < losses.Count; i++)
        {
            var (head, loss) = losses[i];
            terms[i] = Kind switch
            {
                UncertaintyName => UncertaintyTerm(head, loss),
                WeightedName when Alpha is { } a => Weighted(i == 0 ? a : 1 - a, loss),
                WeightedName => Weighted(Weights!.TryGetValue(head.HeadName, out var w) ? w : throw Error($"weights.{head.HeadName}", $"no weight for head '{head.HeadName}'"), loss),
                _ => Weighted(1, loss),
            };
            total += terms[i].Contribution;
        }

        if (!double.IsFinite(total))
        {
            throw Error(Kind == UncertaintyName ? "logVariances" : "weights", $"the combined loss overflows ({HeadMath.Show(total)}); the weights are too large for these losses");
        }

        return new CombinedLoss(total, terms);

        static CombinedTerm Weighted(double weight, double loss) => new(weight, null, weight * loss);
    }

    private CombinedTerm UncertaintyTerm(HeadEvaluator head, double loss)
    {
        var factor = head.UncertaintyFactor
            ?? throw Error("combination", $"uncertainty weighting has no likelihood factor for {head.Kind.ManifestName()} head '{head.HeadName}'");
        var s = LogVariances!.TryGetValue(head.HeadName, out var value)
            ? value
            : throw Error($"logVariances.{head.HeadName}", $"no log-variance for head '{head.HeadName}'");
        var weight = factor * Math.Exp(-s);
        return new CombinedTerm(weight, s, (weight * loss) + (0.5 * s));
    }

    private Exception Error(string field, string message) => _fromManifest ? ManifestError(field, message) : RequestError(field, message);

    private static EvaluationRequestException RequestError(string field, string message) => new(field, message);

    private static LossSpecException ManifestError(string field, string message) => new($"loss.{field}", message);

    private static Dictionary<string, double> CheckWeights(IReadOnlyDictionary<string, double> weights, Func<string, string, Exception> error)
    {
        ArgumentNullException.ThrowIfNull(weights);
        foreach (var (head, weight) in weights)
        {
            if (!double.IsFinite(weight) || weight < 0)
            {
                throw error($"weights.{head}", $"the weight of head '{head}' must be a finite, non-negative number, not {HeadMath.Show(weight)}");
            }
        }

        return new Dictionary<string, double>(weights, StringComparer.Ordinal);
    }

    private static Dictionary<string, double> CheckLogVariances(IReadOnlyDictionary<string, double> logVariances, Func<string, string, Exception> error)
    {
        ArgumentNullException.ThrowIfNull(logVariances);
        foreach (var (head, s) in logVariances)
        {
            if (!double.IsFinite(s))
            {
                throw error($"logVariances.{head}", $"the log-variance of head '{head}' must be a finite number, not {HeadMath.Show(s)}");
            }
        }

        return new Dictionary<string, double>(logVariances, StringComparer.Ordinal);
    }
}

/// <summary>The combined loss and each head's term, in evaluation order.</summary>
internal sealed record CombinedLoss(double Total, IReadOnlyList<CombinedTerm> Terms);

/// <summary>One head's weight, its log-variance under uncertainty weighting, and what it adds to the total.</summary>
internal sealed record CombinedTerm(double Weight, double? LogVariance, double Contribution);
