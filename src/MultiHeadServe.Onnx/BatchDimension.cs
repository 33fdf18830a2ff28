using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx;

/// <summary>
/// Makes a model exported at a fixed batch size (often 1) accept any batch size: the first dimension of
/// its inputs, outputs and intermediate values becomes a symbol, and the shape constants that spell the
/// batch size out are rewritten to follow the input.
/// </summary>
/// <remarks>
/// Thread-safety: <see cref="MakeDynamic"/> is a pure function; it reads its argument and returns a new model.
/// </remarks>
public static class BatchDimension
{
    /// <summary>The symbol written for the batch dimension unless the caller names another.</summary>
    public const string DefaultSymbol = "batch";

    // Operators that read a shape from a tensor and that this rewrite does not follow: a constant of theirs
    // that starts with the batch size may fix the batch, so such a graph is refused rather than broken.
    private static readonly Dictionary<string, int> ShapeInputs = new(StringComparer.Ordinal)
    {
        ["Expand"] = 1, ["ConstantOfShape"] = 0, ["Tile"] = 1, ["Resize"] = 3, ["Upsample"] = 1, ["Range"] = 1,
    };

    /// <summary>
    /// A copy of <paramref name="model"/> whose batch dimension is <paramref name="symbol"/>.
    /// </summary>
    /// <param name="model">The model; not modified. Its fed inputs must share one fixed first dimension, the batch size.</param>
    /// <param name="symbol">The name of the batch dimension in the result.</param>
    /// <returns>
    /// A new model, owned by the caller, in which the first dimension of every fed input, of every output and
    /// of every value info computed from the inputs (not from their shapes) that has the batch size there is
    /// <paramref name="symbol"/>; Reshape shapes stored
    /// as constants (initializers, Constant nodes or the old <c>shape</c> attribute) whose first entry is the
    /// batch size copy it from their input instead (<c>0</c>). A model whose inputs already have a symbolic
    /// batch comes back unchanged.
    /// </returns>
    /// <exception cref="OnnxModelException">
    /// The inputs have no common fixed first dimension, or a shape constant the rewrite cannot follow may carry
    /// the batch size (the message names the node).
    /// </exception>
    public static ModelProto MakeDynamic(ModelProto model, string symbol = DefaultSymbol)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(symbol);
        var graph = model.Graph ?? throw new OnnxModelException("The model has no graph.");
        var feeds = SharedInputs.Feeds(graph).ToList();
        if (feeds.Count == 0)
        {
            throw new OnnxModelException("The model has no inputs to feed, so it has no batch dimension.");
        }

        var fixedSizes = feeds.Select(FirstDimension).Where(dim => dim?.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue)
            .Select(dim => dim!.DimValue).Distinct().ToList();
        if (fixedSizes.Count == 0)
        {
            return model.Clone();
        }

        if (fixedSizes.Count > 1)
        {
            throw new OnnxModelException(
                $"The inputs disagree on the batch size ({string.Join(", ", feeds.Select(input => $"{input.Name} {ValueSignatures.From(input).ShapeText}"))}); " +
                "make the batch dynamic in the exporter instead.");
        }

        var batch = fixedSizes[0];
        var result = model.Clone();
        var target = result.Graph;
        var constants = Constants(target);
        foreach (var node in target.Node)
        {
            if (node.OpType == "Reshape" && OnnxDomains.Normalize(node.Domain).Length == 0)
            {
                RewriteReshape(node, target, constants, batch);
            }
            else if (ShapeInputs.TryGetValue(node.OpType, out var index) && index < node.Input.Count &&
                     constants.TryGetValue(node.Input[index], out var shape) && FirstInt(shape) == batch)
            {
                throw new OnnxModelException(
                    $"Node '{node.Name}' ({node.OpType}) reads a constant shape that starts with the batch size {batch}; " +
                    "a fixed batch cannot be made dynamic here. Export the model with a dynamic batch instead.");
            }
        }

        var stored = OnnxModel.InitializerNames(target);
        var batched = BatchedValues(target, feeds.Select(input => input.Name));
        var intermediates = target.ValueInfo.Where(info => batched.Contains(info.Name));
        foreach (var info in target.Input.Where(input => !stored.Contains(input.Name)).Concat(target.Output).Concat(intermediates))
        {
            if (FirstDimension(info) is { ValueCase: TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue } dim && dim.DimValue == batch)
            {
                dim.DimParam = symbol;
            }
        }

        return result;
    }

    /// <summary>
    /// The values computed from the fed inputs, except shape tensors (what Shape and Size return and what is
    /// computed from them): a leading size equal to the batch means the batch only in the former.
    /// </summary>
    private static HashSet<string> BatchedValues(GraphProto graph, IEnumerable<string> feeds)
    {
        var batched = new HashSet<string>(feeds, StringComparer.Ordinal);
        foreach (var node in graph.Node)
        {
            if (node.OpType is not ("Shape" or "Size") && node.Input.Any(batched.Contains))
            {
                batched.UnionWith(node.Output.Where(output => output.Length > 0));
            }
        }

        return batched;
    }

    private static TensorShapeProto.Types.Dimension? FirstDimension(ValueInfoProto value) =>
        value.Type?.TensorType?.Shape is { Dim.Count: > 0 } shape ? shape.Dim[0] : null;

    /// <summary>Initializers and Constant node outputs holding int64 tensors, by value name.</summary>
    private static Dictionary<string, TensorProto> Constants(GraphProto graph)
    {
        var constants = graph.Initializer.Where(tensor => tensor.DataType == (int)TensorElementType.Int64)
            .ToDictionary(tensor => tensor.Name, StringComparer.Ordinal);
        foreach (var node in graph.Node.Where(node => node.OpType == "Constant" && node.Output.Count == 1))
        {
            if (node.Attribute.FirstOrDefault(attribute => attribute.Name == "value")?.T is { DataType: (int)TensorElementType.Int64 } tensor)
            {
                constants[node.Output[0]] = tensor;
            }
        }

        return constants;
    }

    private static long? FirstInt(TensorProto tensor)
    {
        if (tensor.Int64Data.Count > 0)
        {
            return tensor.Int64Data[0];
        }

        return tensor.RawData.Length >= sizeof(long) ? BitConverter.ToInt64(tensor.RawData.Span[..sizeof(long)]) : null;
    }

    private static void RewriteReshape(NodeProto node, GraphProto graph, Dictionary<string, TensorProto> constants, long batch)
    {
        // 0 copies the input's first dimension, so the batch follows the input; with allowzero=1 it would mean an empty dimension.
        if (node.Attribute.FirstOrDefault(attribute => attribute.Name == "allowzero") is { I: not 0 })
        {
            if (node.Input.Count > 1 && constants.TryGetValue(node.Input[1], out var fixedShape) && FirstInt(fixedShape) == batch)
            {
                throw new OnnxModelException(
                    $"Node '{node.Name}' (Reshape with allowzero=1) has a constant shape that starts with the batch size {batch}; " +
                    "it cannot copy the batch from its input.");
            }

            return;
        }

        if (node.Attribute.FirstOrDefault(attribute => attribute.Name == "shape") is { Ints.Count: > 0 } legacy)
        {
            if (legacy.Ints[0] == batch)
            {
                legacy.Ints[0] = 0;
            }

            return;
        }

        if (node.Input.Count < 2 || !constants.TryGetValue(node.Input[1], out var shape) || FirstInt(shape) != batch)
        {
            return;
        }

        // A fresh copy for this node, since the same constant may feed nodes that are not about the batch.
        var values = shape.Int64Data.Count > 0
            ? shape.Int64Data.ToArray()
            : Enumerable.Range(0, shape.RawData.Length / sizeof(long)).Select(i => BitConverter.ToInt64(shape.RawData.Span.Slice(i * sizeof(long), sizeof(long)))).ToArray();
        values[0] = 0;
        var copy = new TensorProto { Name = UniqueName(graph, $"{node.Input[1]}_dynamic_batch"), DataType = (int)TensorElementType.Int64 };
        copy.Dims.Add(shape.Dims);
        copy.Int64Data.Add(values);
        graph.Initializer.Add(copy);
        node.Input[1] = copy.Name;
    }

    private static string UniqueName(GraphProto graph, string name)
    {
        var taken = GraphScope.DefinedNames(graph);
        var candidate = name;
        for (var i = 1; taken.Contains(candidate); i++)
        {
            candidate = FormattableString.Invariant($"{name}_{i}");
        }

        return candidate;
    }
}
