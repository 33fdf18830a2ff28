using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx;

/// <summary>
/// Cuts a graph down to some of its outputs, so that serving a subset of heads runs only the part of the
/// graph those heads need.
/// </summary>
/// <remarks>
/// Thread-safety: <see cref="Prune"/> is a pure function. It does not change its argument and returns a new
/// model that shares nothing mutable with it; the argument must not be edited during the call.
/// </remarks>
public static class ModelPruning
{
    /// <summary>
    /// A copy of <paramref name="model"/> whose graph returns only <paramref name="keepOutputs"/> and keeps
    /// only what they depend on.
    /// </summary>
    /// <param name="model">The model to prune; not modified.</param>
    /// <param name="keepOutputs">Graph output names to keep; at least one. Order and duplicates do not matter.</param>
    /// <returns>
    /// A new model, owned by the caller. Its outputs are the kept ones in their original order; its nodes,
    /// initializers, sparse initializers, value infos and quantization annotations are those the kept outputs
    /// reach backwards (including values that If/Loop/Scan bodies read from the enclosing graph); its inputs
    /// are those still read, so a caller need not feed an input only dropped outputs used. Everything else
    /// (opsets, functions, metadata) is unchanged. Keeping every output of a graph without dead nodes yields a
    /// byte-identical model.
    /// </returns>
    /// <exception cref="OnnxModelException">An output name is not a graph output; the message lists the outputs.</exception>
    public static ModelProto Prune(ModelProto model, IReadOnlyCollection<string> keepOutputs)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(keepOutputs);
        var graph = model.Graph ?? throw new OnnxModelException("The model has no graph.");
        if (keepOutputs.Count == 0)
        {
            throw new OnnxModelException("Keep at least one output.");
        }

        var outputs = graph.Output.Select(output => output.Name).ToHashSet(StringComparer.Ordinal);
        if (keepOutputs.FirstOrDefault(name => !outputs.Contains(name)) is { } unknown)
        {
            throw new OnnxModelException(
                $"'{unknown}' is not an output of the model. Its outputs are: {string.Join(", ", graph.Output.Select(output => output.Name))}.");
        }

        var (nodes, needed) = Reachable(graph, keepOutputs);
        var pruned = model.Clone();
        var result = pruned.Graph;
        var keptNodes = result.Node.Where((_, index) => nodes[index]).ToList();
        result.Node.Clear();
        result.Node.AddRange(keptNodes);

        var keep = new HashSet<string>(keepOutputs, StringComparer.Ordinal);
        Retain(result.Output, output => keep.Contains(output.Name));
        Retain(result.Input, input => needed.Contains(input.Name));
        Retain(result.Initializer, tensor => needed.Contains(tensor.Name));
        Retain(result.SparseInitializer, tensor => tensor.Values is not null && needed.Contains(tensor.Values.Name));
        Retain(result.ValueInfo, info => needed.Contains(info.Name));
        Retain(result.QuantizationAnnotation, annotation => needed.Contains(annotation.TensorName));
        KeepProvenanceTrue(pruned, keep);
        return pruned;
    }

    /// <summary>
    /// A fused model's provenance names its members and their outputs: after pruning it names only the members that
    /// still have an output and only the outputs kept, and a dropped member's copied metadata goes with it, so the
    /// metadata never describes parts the file no longer holds. A model keeping every member is left as it was.
    /// </summary>
    private static void KeepProvenanceTrue(ModelProto model, HashSet<string> keep)
    {
        var metadata = model.MetadataProps;
        var members = metadata.FirstOrDefault(entry => entry.Key == ModelFusion.MembersMetadataKey);
        if (members is null)
        {
            return;
        }

        var separator = metadata.FirstOrDefault(entry => entry.Key == ModelFusion.SeparatorMetadataKey)?.Value ?? new FuseOptions().Separator;
        var kept = new List<string>();
        var dropped = new List<string>();
        foreach (var prefix in members.Value.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var outputs = metadata.FirstOrDefault(entry => entry.Key == $"multiheadserve.member.{prefix}.outputs");
            if (outputs is null)
            {
                kept.Add(prefix);
                continue;
            }

            // Each output is "name" or "original=fused name".
            var still = outputs.Value.Split(',', StringSplitOptions.RemoveEmptyEntries).Where(o => keep.Contains(o[(o.IndexOf('=', StringComparison.Ordinal) + 1)..])).ToList();
            if (still.Count == 0)
            {
                dropped.Add(prefix);
                continue;
            }

            kept.Add(prefix);
            var value = string.Join(',', still);
            if (value != outputs.Value)
            {
                outputs.Value = value;
            }
        }

        if (dropped.Count == 0)
        {
            return;
        }

        members.Value = string.Join(',', kept);
        var stale = metadata.Where(entry => dropped.Any(prefix =>
            entry.Key.StartsWith($"multiheadserve.member.{prefix}.", StringComparison.Ordinal) ||
            entry.Key.StartsWith(prefix + separator, StringComparison.Ordinal))).ToList();
        foreach (var entry in stale)
        {
            metadata.Remove(entry);
        }
    }

    /// <summary>The nodes the outputs depend on (by index) and every value name they read.</summary>
    internal static (bool[] Nodes, HashSet<string> Values) Reachable(GraphProto graph, IEnumerable<string> outputs)
    {
        var producer = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var index = 0; index < graph.Node.Count; index++)
        {
            foreach (var output in graph.Node[index].Output.Where(output => output.Length > 0))
            {
                producer[output] = index;
            }
        }

        var nodes = new bool[graph.Node.Count];
        var values = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<string>(outputs);
        while (pending.TryPop(out var value))
        {
            if (!values.Add(value) || !producer.TryGetValue(value, out var index) || nodes[index])
            {
                continue;
            }

            nodes[index] = true;
            foreach (var read in GraphScope.Reads(graph.Node[index]))
            {
                pending.Push(read);
            }
        }

        foreach (var annotation in graph.QuantizationAnnotation.Where(annotation => values.Contains(annotation.TensorName)))
        {
            // Quantization parameters are referenced by name from the annotation, not only from nodes.
            values.UnionWith(annotation.QuantParameterTensorNames.Select(entry => entry.Value));
        }

        return (nodes, values);
    }

    private static void Retain<T>(Google.Protobuf.Collections.RepeatedField<T> items, Func<T, bool> keep)
    {
        var kept = items.Where(keep).ToList();
        items.Clear();
        items.AddRange(kept);
    }
}
