namespace MultiHeadServe.Onnx;

/// <summary>How <see cref="ModelComposition.Compose"/> joins a backbone and a head. Immutable; share freely.</summary>
public sealed record ComposeOptions
{
    /// <summary>The defaults: the backbone's only output feeds the head's only input, no prefixes.</summary>
    public static ComposeOptions Default { get; } = new();

    /// <summary>
    /// Which backbone value feeds which head input, as (backbone value, head input) pairs. A backbone value
    /// may be a graph output or any value its nodes compute (an intermediate feature map). Default: empty,
    /// which connects the backbone's only output to the head's only input.
    /// </summary>
    public IReadOnlyList<(string Backbone, string Head)> Map { get; init; } = [];

    /// <summary>
    /// Put before every internal name of the backbone (nodes, initializers, intermediate values), to keep
    /// the names of the two graphs apart. Graph inputs and outputs keep their names. Default: none.
    /// </summary>
    public string? BackbonePrefix { get; init; }

    /// <summary>As <see cref="BackbonePrefix"/>, for the head. Default: none.</summary>
    public string? HeadPrefix { get; init; }

    /// <summary>
    /// Which backbone outputs the composed model returns besides the head's. Default
    /// <see cref="BackboneOutputs.Unread"/>, as <c>onnx.compose.merge_models</c> does.
    /// </summary>
    public BackboneOutputs BackboneOutputs { get; init; } = BackboneOutputs.Unread;
}

/// <summary>The backbone outputs a composed model returns besides the head's.</summary>
public enum BackboneOutputs
{
    /// <summary>Those the head does not read.</summary>
    Unread,

    /// <summary>All of them, including those the head reads.</summary>
    All,

    /// <summary>None: only the head's outputs, and the backbone nodes that only other outputs needed are dropped.</summary>
    None,
}
