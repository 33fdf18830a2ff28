using System.Collections.ObjectModel;

namespace MultiHeadServe.Onnx;

/// <summary>How <see cref="ModelFusion.Fuse"/> combines its members. Immutable; share freely.</summary>
public sealed record FuseOptions
{
    /// <summary>The defaults: <c>/</c> separator, no renames, opset versions must agree, no deduplication.</summary>
    public static FuseOptions Default { get; } = new();

    /// <summary>
    /// Joins a member's prefix to each of its internal names: with prefix <c>click</c>, weight
    /// <c>fc.weight</c> becomes <c>click/fc.weight</c>. Prefixes may not contain it, which keeps the names
    /// of different members apart. Default <c>/</c>.
    /// </summary>
    public string Separator { get; init; } = "/";

    /// <summary>
    /// New names for member outputs, e.g. to fuse members that all call their output <c>score</c>. Outputs not
    /// listed keep their names. Default: none.
    /// </summary>
    public IReadOnlyDictionary<MemberOutput, string> OutputNames { get; init; } = ReadOnlyDictionary<MemberOutput, string>.Empty;

    /// <summary>
    /// When members import different versions of one operator set, use the highest instead of failing. Only
    /// safe when no operator the lower-versioned members use changed between the versions. Default false.
    /// </summary>
    public bool AllowOpsetVersionMismatch { get; init; }

    /// <summary>
    /// Store byte-identical initializers (same type, shape and data, e.g. a shared embedding table) once,
    /// under the first member's name. Initializers that are also graph inputs are never merged, since a
    /// caller may override them one by one. Default false.
    /// </summary>
    public bool DeduplicateInitializers { get; init; }

    /// <summary>The fused graph's name. Default: the prefixes joined with <c>+</c>.</summary>
    public string? GraphName { get; init; }
}

/// <summary>An output of one fusion member.</summary>
/// <param name="Member">The member's prefix.</param>
/// <param name="Output">The output's name in the member model.</param>
public readonly record struct MemberOutput(string Member, string Output);
