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
    /// Keep the backbone's outputs that feed the head as outputs of the composed model too. Default false: the
    /// composed model returns the head's outputs and the backbone outputs the head does not read.
    /// </summary>
    public bool KeepMappedBackboneOutputs { get; init; }
}
