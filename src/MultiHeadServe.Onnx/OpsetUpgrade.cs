using Google.Protobuf;
using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx;

/// <summary>
/// Raises the version of the default ONNX operator set a graph imports, for graphs whose operators
/// mean the same at both versions, or whose change is a mechanical rewrite (an attribute that became an
/// input). Anything else is refused with the operator and the version at which it changed.
/// </summary>
/// <remarks>
/// This is deliberately not a general version converter: it knows the operators pretrained vision
/// backbones and small exported heads are made of, and refuses every other one rather than guess.
/// </remarks>
internal static class OpsetUpgrade
{
    // Operators whose every change up to this version only widened the accepted types, added negative
    // axes or optional inputs, or clarified the text: a node valid at an older version computes the same.
    private static readonly Dictionary<string, long> Unchanged = new(StringComparer.Ordinal)
    {
        ["Abs"] = 23, ["Add"] = 23, ["Sub"] = 23, ["Mul"] = 23, ["Div"] = 23, ["Relu"] = 23, ["Sigmoid"] = 23,
        ["Tanh"] = 23, ["Exp"] = 23, ["Log"] = 23, ["Sqrt"] = 23, ["Neg"] = 23, ["Concat"] = 23, ["Flatten"] = 23,
        ["Gemm"] = 23, ["MatMul"] = 23, ["Identity"] = 23, ["Constant"] = 23, ["Shape"] = 23, ["Gather"] = 23,
        ["Transpose"] = 23, ["Conv"] = 23, ["MaxPool"] = 23, ["AveragePool"] = 23, ["GlobalAveragePool"] = 23,
        ["GlobalMaxPool"] = 23, ["LeakyRelu"] = 23, ["Cast"] = 23,
    };

    // Attributes that became inputs: Split's sizes and Squeeze/Unsqueeze's axes at 13, Reshape's shape at 5.
    private static readonly Dictionary<string, (long Version, string Attribute)> AttributeToInput = new(StringComparer.Ordinal)
    {
        ["Split"] = (13, "split"),
        ["Squeeze"] = (13, "axes"),
        ["Unsqueeze"] = (13, "axes"),
        ["Reshape"] = (5, "shape"),
    };

    /// <summary>The version of the default operator set a model imports, or null when it imports none.</summary>
    public static long? DefaultVersion(ModelProto model) =>
        model.OpsetImport.FirstOrDefault(opset => OnnxDomains.Normalize(opset.Domain).Length == 0)?.Version;

    /// <summary>
    /// Why the model's default-domain nodes cannot be moved from <paramref name="from"/> to
    /// <paramref name="to"/>, or null when they can.
    /// </summary>
    public static string? Obstacle(ModelProto model, long from, long to)
    {
        foreach (var node in DefaultDomainNodes(model.Graph))
        {
            if (Reason(node, from, to) is { } reason)
            {
                return reason;
            }
        }

        return null;
    }

    /// <summary>A copy of <paramref name="model"/> importing version <paramref name="to"/> of the default operator set.</summary>
    /// <exception cref="OnnxModelException">An operator cannot be upgraded; <paramref name="who"/> names the model in the message.</exception>
    public static ModelProto Upgrade(ModelProto model, long to, string who)
    {
        var from = DefaultVersion(model) ?? to;
        if (from == to)
        {
            return model.Clone();
        }

        if (from > to)
        {
            throw new OnnxModelException($"{who} imports operator set ai.onnx {from}; it cannot be moved down to {to}.");
        }

        if (Obstacle(model, from, to) is { } reason)
        {
            throw new OnnxModelException($"{who} cannot be upgraded from operator set ai.onnx {from} to {to}: {reason}");
        }

        var upgraded = model.Clone();
        foreach (var graph in Graphs(upgraded.Graph))
        {
            var added = new List<TensorProto>();
            foreach (var node in graph.Node.Where(IsDefaultDomain))
            {
                Rewrite(node, graph, from, to, added);
            }

            graph.Initializer.AddRange(added);
        }

        foreach (var opset in upgraded.OpsetImport.Where(opset => OnnxDomains.Normalize(opset.Domain).Length == 0))
        {
            opset.Version = to;
        }

        return upgraded;
    }

    private static string? Reason(NodeProto node, long from, long to)
    {
        var op = node.OpType;
        if (op == "BatchNormalization")
        {
            // Version 9 dropped 'spatial' (always per channel from then on); 14 and 15 only added training mode.
            var spatial = node.Attribute.FirstOrDefault(attribute => attribute.Name == "spatial");
            if (spatial is not null && spatial.I != 1)
            {
                return $"node '{node.Name}' is a BatchNormalization with spatial={spatial.I}, which later versions cannot express.";
            }

            return node.Output.Count(name => name.Length > 0) > 1
                ? $"node '{node.Name}' is a BatchNormalization in training mode (several outputs)."
                : null;
        }

        if (AttributeToInput.ContainsKey(op))
        {
            return null;
        }

        if (Unchanged.TryGetValue(op, out var until) && to <= until)
        {
            if (op is "MaxPool" or "AveragePool" or "Conv" &&
                node.Attribute.FirstOrDefault(attribute => attribute.Name == "auto_pad") is { } autoPad &&
                autoPad.S.ToStringUtf8() is not ("NOTSET" or "VALID"))
            {
                // SAME_* padding was redefined at version 11; explicit pads mean the same everywhere.
                return from < 11 && to >= 11 ? $"node '{node.Name}' ({op}) uses auto_pad {autoPad.S.ToStringUtf8()}, redefined at version 11." : null;
            }

            return null;
        }

        return $"operator {op} (node '{node.Name}') is not known to keep its meaning between versions {from} and {to}.";
    }

    private static void Rewrite(NodeProto node, GraphProto graph, long from, long to, List<TensorProto> added)
    {
        if (node.OpType == "BatchNormalization" && from < 9 && to >= 9)
        {
            RemoveAttribute(node, "spatial");
        }

        if (AttributeToInput.TryGetValue(node.OpType, out var change) && from < change.Version && to >= change.Version &&
            node.Attribute.FirstOrDefault(attribute => attribute.Name == change.Attribute) is { } attribute)
        {
            var tensor = new TensorProto
            {
                Name = UniqueName(graph, added, $"{(node.Name.Length > 0 ? node.Name : node.Output[0])}_{change.Attribute}"),
                DataType = (int)TensorElementType.Int64,
            };
            tensor.Dims.Add(attribute.Ints.Count);
            tensor.Int64Data.Add(attribute.Ints);
            added.Add(tensor);
            while (node.Input.Count < 1)
            {
                node.Input.Add(string.Empty);
            }

            node.Input.Insert(1, tensor.Name);
            node.Attribute.Remove(attribute);
        }
    }

    private static void RemoveAttribute(NodeProto node, string name)
    {
        if (node.Attribute.FirstOrDefault(attribute => attribute.Name == name) is { } attribute)
        {
            node.Attribute.Remove(attribute);
        }
    }

    private static string UniqueName(GraphProto graph, List<TensorProto> added, string name)
    {
        var taken = GraphScope.DefinedNames(graph);
        taken.UnionWith(added.Select(tensor => tensor.Name));
        var candidate = name;
        for (var i = 1; taken.Contains(candidate); i++)
        {
            candidate = FormattableString.Invariant($"{name}_{i}");
        }

        return candidate;
    }

    private static bool IsDefaultDomain(NodeProto node) => OnnxDomains.Normalize(node.Domain).Length == 0;

    private static IEnumerable<NodeProto> DefaultDomainNodes(GraphProto graph) =>
        Graphs(graph).SelectMany(item => item.Node).Where(IsDefaultDomain);

    private static IEnumerable<GraphProto> Graphs(GraphProto graph)
    {
        yield return graph;
        foreach (var subgraph in graph.Node.SelectMany(GraphScope.Subgraphs).SelectMany(Graphs))
        {
            yield return subgraph;
        }
    }
}
