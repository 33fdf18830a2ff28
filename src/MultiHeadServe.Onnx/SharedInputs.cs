using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx;

/// <summary>
/// The graph inputs fusion members have in common: every member must declare the same feeds (same names,
/// same types, shapes that can describe the same tensor), because one fetched tensor feeds them all.
/// </summary>
internal static class SharedInputs
{
    /// <summary>
    /// The inputs of the fused graph, in the first member's order, each with the most specific shape the
    /// members agree on (a fixed size wins over a symbol).
    /// </summary>
    /// <exception cref="OnnxModelException">A member lacks an input, has an extra one, or disagrees on a type.</exception>
    public static List<ValueInfoProto> Merge(IReadOnlyList<(string Prefix, ModelProto Model)> members)
    {
        var reference = members[0].Prefix;
        var merged = Feeds(members[0].Model.Graph).Select(input => input.Clone()).ToList();
        var byName = merged.ToDictionary(input => input.Name, StringComparer.Ordinal);

        foreach (var (prefix, model) in members.Skip(1))
        {
            var feeds = Feeds(model.Graph).ToList();
            var names = feeds.Select(input => input.Name).ToHashSet(StringComparer.Ordinal);
            if (merged.FirstOrDefault(input => !names.Contains(input.Name)) is { } missing)
            {
                throw new OnnxModelException(
                    $"Member '{prefix}' has no graph input '{missing.Name}', which member '{reference}' has. " +
                    "Fused members must share the same graph inputs.");
            }

            foreach (var input in feeds)
            {
                if (!byName.TryGetValue(input.Name, out var existing))
                {
                    throw new OnnxModelException(
                        $"Member '{prefix}' has graph input '{input.Name}', which member '{reference}' does not have. " +
                        "Fused members must share the same graph inputs.");
                }

                existing.Type = MergeType(existing, input, reference, prefix);
            }
        }

        return merged;
    }

    /// <summary>The inputs a caller feeds: graph inputs without a stored initializer.</summary>
    public static IEnumerable<ValueInfoProto> Feeds(GraphProto graph)
    {
        var stored = OnnxModel.InitializerNames(graph);
        return graph.Input.Where(input => !stored.Contains(input.Name));
    }

    private static TypeProto? MergeType(ValueInfoProto existing, ValueInfoProto incoming, string reference, string prefix)
    {
        var (left, right) = (existing.Type, incoming.Type);
        if (left is null || right is null)
        {
            return (left ?? right)?.Clone();
        }

        if (left.ValueCase != TypeProto.ValueOneofCase.TensorType || right.ValueCase != TypeProto.ValueOneofCase.TensorType)
        {
            return left.Equals(right) ? left : throw TypeMismatch(existing, incoming, reference, prefix);
        }

        if (left.TensorType.ElemType != right.TensorType.ElemType)
        {
            throw TypeMismatch(existing, incoming, reference, prefix);
        }

        var (leftShape, rightShape) = (left.TensorType.Shape, right.TensorType.Shape);
        if (leftShape is null || rightShape is null)
        {
            // An unknown rank is compatible with any shape; keep the one that says more.
            left.TensorType.Shape = (leftShape ?? rightShape)?.Clone();
            return left;
        }

        if (leftShape.Dim.Count != rightShape.Dim.Count)
        {
            throw ShapeMismatch(existing, incoming, reference, prefix, $"the ranks differ ({leftShape.Dim.Count} and {rightShape.Dim.Count})");
        }

        for (var axis = 0; axis < leftShape.Dim.Count; axis++)
        {
            var (mine, theirs) = (leftShape.Dim[axis], rightShape.Dim[axis]);
            var mineFixed = mine.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue;
            var theirsFixed = theirs.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue;
            if (mineFixed && theirsFixed && mine.DimValue != theirs.DimValue)
            {
                throw ShapeMismatch(existing, incoming, reference, prefix, $"dimension {axis} differs");
            }

            if (!mineFixed && theirsFixed)
            {
                leftShape.Dim[axis] = theirs.Clone();
            }
        }

        return left;
    }

    private static OnnxModelException TypeMismatch(ValueInfoProto existing, ValueInfoProto incoming, string reference, string prefix) =>
        new($"Graph input '{existing.Name}' is {ValueSignatures.Describe(existing.Type)} in member '{reference}' " +
            $"but {ValueSignatures.Describe(incoming.Type)} in member '{prefix}'. Fused members must share the same graph inputs.");

    private static OnnxModelException ShapeMismatch(
        ValueInfoProto existing, ValueInfoProto incoming, string reference, string prefix, string reason) =>
        new($"Graph input '{existing.Name}' has shape {ValueSignatures.From(existing).ShapeText} in member '{reference}' " +
            $"but {ValueSignatures.From(incoming).ShapeText} in member '{prefix}': {reason}. " +
            "Fused members must share the same graph inputs.");
}
