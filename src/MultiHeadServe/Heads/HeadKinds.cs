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
