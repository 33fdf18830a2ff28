namespace MultiHeadServe.Heads;

/// <summary>The manifest's spellings of head kinds, activations and box formats.</summary>
internal static class HeadKinds
{
    public const string Classification = "classification";
    public const string Multilabel = "multilabel";
    public const string Binary = "binary";
    public const string Regression = "regression";
    public const string BoundingBox = "bbox";
    public const string Embedding = "embedding";

    public static readonly string[] All = [Classification, Multilabel, Binary, Regression, BoundingBox, Embedding];
}

/// <summary>The manifest's activations.</summary>
internal static class Activations
{
    public const string None = "none";
    public const string Softmax = "softmax";
    public const string Sigmoid = "sigmoid";

    public static readonly string[] All = [None, Softmax, Sigmoid];
}

/// <summary>The manifest's box formats.</summary>
internal static class BoxFormats
{
    public const string Xyxy = "xyxy";
    public const string Xywh = "xywh";
    public const string Cxcywh = "cxcywh";

    public static readonly string[] All = [Xyxy, Xywh, Cxcywh];
}

/// <summary>
/// Checks a head's kind and activation, shared by decoders and loss evaluation so both accept exactly the
/// same manifests.
/// </summary>
internal static class HeadSpecRules
{
    /// <summary>The activations that make sense for each kind.</summary>
    public static string[] ActivationsFor(string kind) => kind switch
    {
        HeadKinds.Classification => [Activations.Softmax, Activations.None, Activations.Sigmoid],
        HeadKinds.Multilabel or HeadKinds.Binary => [Activations.Sigmoid, Activations.None],
        _ => [Activations.None],
    };

    public static void Check(Models.HeadSpec spec)
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

        if (!HeadKinds.All.Contains(spec.Kind, StringComparer.Ordinal))
        {
            throw new HeadSpecException(spec.Name, "kind", $"unknown kind '{spec.Kind}'; expected one of {string.Join(", ", HeadKinds.All)}");
        }

        if (!Activations.All.Contains(spec.Activation, StringComparer.Ordinal))
        {
            throw new HeadSpecException(
                spec.Name, "activation", $"unknown activation '{spec.Activation}'; expected one of {string.Join(", ", Activations.All)}");
        }

        var allowed = ActivationsFor(spec.Kind);
        if (!allowed.Contains(spec.Activation, StringComparer.Ordinal))
        {
            throw new HeadSpecException(
                spec.Name, "activation", $"activation '{spec.Activation}' does not apply to a {spec.Kind} head; use {string.Join(" or ", allowed)}");
        }
    }

    /// <summary>
    /// The decimal value a manifest author wrote for a float field: 0.1f becomes 0.1, not 0.100000001...,
    /// so a regression head's scale and offset mean what the manifest says.
    /// </summary>
    public static double ManifestDouble(float value) =>
        double.Parse(value.ToString("R", System.Globalization.CultureInfo.InvariantCulture), System.Globalization.CultureInfo.InvariantCulture);
}
