using System.Globalization;
using MultiHeadServe.Heads.Losses;
using MultiHeadServe.Models;

namespace MultiHeadServe.Heads;

/// <summary>
/// What each kind of head reads from its manifest entry and how it is decoded and scored, stated once: decoders,
/// loss evaluation and the manifest validator all read these rows, so they accept exactly the same manifests. A new
/// kind is a member of <see cref="HeadKind"/>, a row here and its decoder.
/// </summary>
internal static class HeadSpecRules
{
    private static readonly string[] NumericLosses = [LossFunctions.Mse, LossFunctions.Mae, LossFunctions.Huber, LossFunctions.SmoothL1];

    /// <summary>One row per kind, in <see cref="HeadKind"/>'s order.</summary>
    private static readonly HeadKindRule[] Rules =
    [
        new(HeadKind.Classification, (spec, labels, width) => new ClassificationDecoder(spec, labels, width))
        {
            Activations = [Activation.Softmax, Activation.None, Activation.Sigmoid],
            Options = HeadOptions.Labels | HeadOptions.TopK,
            DefaultLoss = LossFunctions.SoftmaxCrossEntropy,
            Losses = [LossFunctions.SoftmaxCrossEntropy],
            UncertaintyFactor = 1.0,
        },
        new(HeadKind.Multilabel, (spec, labels, width) => new MultilabelDecoder(spec, labels, width))
        {
            Activations = [Activation.Sigmoid, Activation.None],
            Options = HeadOptions.Labels | HeadOptions.Threshold,
            DefaultLoss = LossFunctions.Bce,
            Losses = [LossFunctions.Bce],
            UncertaintyFactor = 1.0,
        },
        new(HeadKind.Binary, (spec, _, width) => new BinaryDecoder(spec, width))
        {
            Activations = [Activation.Sigmoid, Activation.None],
            Options = HeadOptions.Threshold,
            Width = 1,
            DefaultLoss = LossFunctions.Bce,
            Losses = [LossFunctions.Bce],
            UncertaintyFactor = 1.0,
        },
        new(HeadKind.Regression, (spec, _, width) => new RegressionDecoder(spec, width))
        {
            Options = HeadOptions.Affine,
            DefaultLoss = LossFunctions.Mse,
            Losses = NumericLosses,
            UncertaintyFactor = 0.5,
        },
        new(HeadKind.BoundingBox, (spec, _, width) => new BoundingBoxDecoder(spec, width))
        {
            Options = HeadOptions.Box,
            Width = 4,
            DefaultLoss = LossFunctions.SmoothL1,
            Losses = [LossFunctions.SmoothL1, LossFunctions.Giou, LossFunctions.Mse, LossFunctions.Mae, LossFunctions.Huber],
            UncertaintyFactor = 0.5,
        },
        new(HeadKind.Embedding, (spec, _, width) => new EmbeddingDecoder(spec, width))
        {
            Losses = NumericLosses,
        },
    ];

    /// <summary>The kind's row.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="kind"/> is not a member of <see cref="HeadKind"/>.</exception>
    public static HeadKindRule For(HeadKind kind) =>
        Array.Find(Rules, r => r.Kind == kind) ?? throw new ArgumentOutOfRangeException(nameof(kind), kind, "not a head kind");

    /// <summary>The kinds that read <paramref name="option"/>, as a manifest names them: "classification and multilabel".</summary>
    public static string KindsTaking(HeadOptions option) => string.Join(" and ", Rules.Where(r => r.Takes(option)).Select(r => r.Kind.ManifestName()));

    /// <summary>Checks everything the head's kind reads from its entry, and returns the kind's row.</summary>
    /// <exception cref="HeadSpecException">The entry cannot be served as it stands.</exception>
    public static HeadKindRule Check(HeadSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (string.IsNullOrWhiteSpace(spec.Name))
        {
            throw new HeadSpecException("", "name", "a head needs a name");
        }

        if (string.IsNullOrWhiteSpace(spec.Output))
        {
            throw new HeadSpecException(spec.Name, "output", "a head needs the name of the ONNX output it reads");
        }

        var rule = Array.Find(Rules, r => r.Kind == spec.Kind)
            ?? throw new HeadSpecException(spec.Name, "kind", $"unknown kind '{spec.Kind}'; expected one of {string.Join(", ", ManifestEnum<HeadKind>.Names)}");

        if (!Enum.IsDefined(spec.Activation))
        {
            throw new HeadSpecException(
                spec.Name, "activation", $"unknown activation '{spec.Activation}'; expected one of {string.Join(", ", ManifestEnum<Activation>.Names)}");
        }

        if (!rule.Activations.Contains(spec.Activation))
        {
            throw new HeadSpecException(spec.Name, "activation",
                $"activation '{spec.Activation.ManifestName()}' does not apply to a {spec.Kind.ManifestName()} head; use {string.Join(" or ", rule.Activations.Select(a => a.ManifestName()))}");
        }

        if (rule.Takes(HeadOptions.TopK) && spec.TopK < 1)
        {
            throw new HeadSpecException(spec.Name, "topK", $"topK must be at least 1, not {spec.TopK}");
        }

        if (rule.Takes(HeadOptions.Threshold) && !(float.IsFinite(spec.Threshold) && spec.Threshold is >= 0f and <= 1f))
        {
            throw new HeadSpecException(spec.Name, "threshold", $"threshold must be a probability in [0, 1], not {HeadMath.Show(spec.Threshold)}");
        }

        if (rule.Takes(HeadOptions.Box) && !Enum.IsDefined(spec.BoxFormat))
        {
            throw new HeadSpecException(
                spec.Name, "boxFormat", $"unknown box format '{spec.BoxFormat}'; expected one of {string.Join(", ", ManifestEnum<BoxFormat>.Names)}");
        }

        if (rule.Takes(HeadOptions.Affine))
        {
            // A zero scale would serve a constant and leave evaluation unable to map labels back into the space the
            // model was trained in.
            if (!float.IsFinite(spec.Scale) || spec.Scale == 0f)
            {
                throw new HeadSpecException(spec.Name, "scale", $"scale must be a finite, non-zero number, not {HeadMath.Show(spec.Scale)}");
            }

            if (!float.IsFinite(spec.Offset))
            {
                throw new HeadSpecException(spec.Name, "offset", $"offset must be a finite number, not {HeadMath.Show(spec.Offset)}");
            }
        }

        return rule;
    }

    /// <summary>
    /// The loss a head gets when its manifest names none, the one the training kit uses for the kind; null when there
    /// is no natural choice (embeddings, classification through independent sigmoids, which softmax cross-entropy
    /// does not apply to).
    /// </summary>
    public static string? DefaultLoss(HeadSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var loss = For(spec.Kind).DefaultLoss;
        return loss == LossFunctions.SoftmaxCrossEntropy && spec.Activation == Activation.Sigmoid ? null : loss;
    }

    /// <summary>
    /// The decimal value a manifest author wrote for a float field: 0.1f becomes 0.1, not 0.100000001...,
    /// so a regression head's scale and offset mean what the manifest says.
    /// </summary>
    public static double ManifestDouble(float value) =>
        double.Parse(value.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
}

/// <summary>The optional members of a head's manifest entry; each kind reads some of them and ignores the rest.</summary>
[Flags]
internal enum HeadOptions
{
    None = 0,

    /// <summary><c>labels</c>: a file naming the output's columns.</summary>
    Labels = 1,

    /// <summary><c>topK</c>: how many classes the result ranks.</summary>
    TopK = 2,

    /// <summary><c>threshold</c>: the probability from which a decision is positive.</summary>
    Threshold = 4,

    /// <summary><c>boxFormat</c> and <c>normalized</c>: how the four values describe a box.</summary>
    Box = 8,

    /// <summary><c>scale</c> and <c>offset</c>: the map from the raw output to served units.</summary>
    Affine = 16,
}

/// <summary>One kind's rules: see <see cref="HeadSpecRules"/>.</summary>
/// <param name="Kind">The kind.</param>
/// <param name="Decoder">Builds the kind's decoder from a checked entry, its labels (kinds taking labels) and the output width the session reports.</param>
internal sealed record HeadKindRule(HeadKind Kind, Func<HeadSpec, IReadOnlyList<string>?, int?, HeadDecoder> Decoder)
{
    /// <summary>The activations that apply, the usual one first; <c>none</c> alone for kinds that take none.</summary>
    public IReadOnlyList<Activation> Activations { get; init; } = [Activation.None];

    /// <summary>The optional members the kind reads.</summary>
    public HeadOptions Options { get; init; }

    /// <summary>Values per output row the kind fixes (binary 1, bbox 4); null when the output or the labels decide.</summary>
    public int? Width { get; init; }

    /// <summary>The loss a head of the kind gets when its manifest names none; see <see cref="HeadSpecRules.DefaultLoss"/>.</summary>
    public string? DefaultLoss { get; init; }

    /// <summary>The losses that make sense for the kind.</summary>
    public IReadOnlyList<string> Losses { get; init; } = [];

    /// <summary>
    /// The training kit's likelihood factor c in c·exp(−s)·L + s/2: 0.5 for Gaussian (regression, bbox) heads, 1 for
    /// softmax and Bernoulli (classification, binary, multilabel) heads; null where uncertainty weighting has none.
    /// </summary>
    public double? UncertaintyFactor { get; init; }

    public bool Takes(HeadOptions option) => (Options & option) == option;
}
