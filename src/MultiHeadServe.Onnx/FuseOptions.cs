using System.Collections.ObjectModel;

namespace MultiHeadServe.Onnx;

/// <summary>How <see cref="ModelFusion.Fuse"/> combines its members. Immutable; share freely.</summary>
public sealed record FuseOptions
{
    /// <summary>The defaults: <c>/</c> separator, no renames, opset versions must agree or be safely upgradable, no deduplication.</summary>
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
    /// When members import different versions of one operator set, use the highest without checking the
    /// operators. Only safe when no operator the lower-versioned members use changed between the versions.
    /// Without it, members importing an older version of the default set are upgraded when every operator they
    /// use means the same at the newer one, and fusion is refused otherwise. Default false.
    /// </summary>
    public bool AllowOpsetVersionMismatch { get; init; }

    /// <summary>
    /// Store byte-identical initializers (same type, shape and data, e.g. a shared embedding table) once,
    /// under the first member's name. Initializers that are also graph inputs are never merged, since a
    /// caller may override them one by one. Default false.
    /// </summary>
    public bool DeduplicateInitializers { get; init; }

    /// <summary>
    /// Compute identical work once: after fusing, a node with the same operator, domain, attributes and
    /// (recursively) identical inputs as an earlier node is dropped and its readers read the earlier node's
    /// outputs, so members that embed the same frozen backbone run it once. Implies
    /// <see cref="DeduplicateInitializers"/>. Random generators, custom-domain operators and nodes with
    /// subgraphs are never merged. Default false.
    /// </summary>
    public bool DeduplicateComputation { get; init; }

    /// <summary>The fused graph's name. Default: the prefixes joined with <c>+</c>.</summary>
    public string? GraphName { get; init; }
}

/// <summary>An output of one fusion member.</summary>
/// <param name="Member">The member's prefix.</param>
/// <param name="Output">The output's name in the member model.</param>
public readonly record struct MemberOutput(string Member, string Output);
