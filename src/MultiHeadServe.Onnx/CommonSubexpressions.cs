using Google.Protobuf;
using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx;

/// <summary>
/// Common-subexpression elimination over a graph: a node with the same operator, domain, attributes and
/// inputs as an earlier node computes the same values, so it is dropped and its readers read the earlier
/// node's outputs. Applied in one pass over a topologically sorted graph, inputs compared after earlier
/// merges, this merges whole identical chains: members that embed the same frozen backbone compute it once.
/// </summary>
/// <remarks>
/// Identical stored tensors must already share one name (the fusion's initializer deduplication), since
/// inputs are compared by name. Nodes that are not pure functions of their inputs are never merged: random
/// generators, operators outside the standard domains (a custom operator may keep state), and nodes with
/// subgraphs (whose bodies read enclosing values by name).
/// </remarks>
internal static class CommonSubexpressions
{
    private static readonly HashSet<string> MergeableDomains = new(StringComparer.Ordinal) { string.Empty, "ai.onnx.ml", "com.microsoft" };

    private static readonly HashSet<string> Random = new(StringComparer.Ordinal)
    {
        "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli",
    };

    /// <summary>Merges duplicate nodes of <paramref name="graph"/> in place; returns how many nodes were removed.</summary>
    public static int Eliminate(GraphProto graph)
    {
        var outputs = graph.Output.Select(output => output.Name).ToHashSet(StringComparer.Ordinal);
        var replaced = new Dictionary<string, string>(StringComparer.Ordinal);
        var seen = new Dictionary<NodeKey, NodeProto>();
        var kept = new List<NodeProto>(graph.Node.Count);
        var identities = new List<NodeProto>();
        foreach (var node in graph.Node)
        {
            RenameReads(node, replaced);
            NodeKey? key = Mergeable(node) ? new NodeKey(node) : null;
            if (key is { } duplicate && seen.TryGetValue(duplicate, out var original))
            {
                for (var i = 0; i < node.Output.Count; i++)
                {
                    if (node.Output[i].Length == 0)
                    {
                        continue;
                    }

                    replaced[node.Output[i]] = original.Output[i];
                    if (outputs.Contains(node.Output[i]))
                    {
                        // A graph output keeps its name: an Identity gives the earlier value that name.
                        var identity = new NodeProto { OpType = "Identity", Name = $"Identity_{node.Output[i]}" };
                        identity.Input.Add(original.Output[i]);
                        identity.Output.Add(node.Output[i]);
                        identities.Add(identity);
                    }
                }

                continue;
            }

            if (key is { } first)
            {
                seen.Add(first, node);
            }

            kept.Add(node);
        }

        var removed = graph.Node.Count - kept.Count;
        if (removed == 0)
        {
            return 0;
        }

        kept.AddRange(identities);
        graph.Node.Clear();
        graph.Node.AddRange(kept);
        var gone = replaced.Keys.Where(name => !outputs.Contains(name)).ToHashSet(StringComparer.Ordinal);
        var infos = graph.ValueInfo.Where(info => !gone.Contains(info.Name)).ToList();
        graph.ValueInfo.Clear();
        graph.ValueInfo.AddRange(infos);
        var annotations = graph.QuantizationAnnotation.Where(annotation => !gone.Contains(annotation.TensorName)).ToList();
        graph.QuantizationAnnotation.Clear();
        graph.QuantizationAnnotation.AddRange(annotations);
        return removed;
    }

    private static bool Mergeable(NodeProto node) =>
        MergeableDomains.Contains(OnnxDomains.Normalize(node.Domain)) && !Random.Contains(node.OpType) &&
        !GraphScope.Subgraphs(node).Any() && node.Output.Count > 0;

    /// <summary>Points the node's inputs, and those of the graphs it holds, at the values that replaced them.</summary>
    private static void RenameReads(NodeProto node, Dictionary<string, string> replaced)
    {
        for (var i = 0; i < node.Input.Count; i++)
        {
            if (replaced.TryGetValue(node.Input[i], out var earlier))
            {
                node.Input[i] = earlier;
            }
        }

        foreach (var subgraph in GraphScope.Subgraphs(node))
        {
            foreach (var inner in subgraph.Node)
            {
                RenameReads(inner, replaced);
            }

            // A body may hand an enclosing value straight back as one of its outputs.
            foreach (var output in subgraph.Output.Where(output => replaced.ContainsKey(output.Name)))
            {
                output.Name = replaced[output.Name];
            }
        }
    }

    /// <summary>What a node computes, without its names: operator, domain, overload, attributes, inputs and which outputs it produces.</summary>
    private readonly struct NodeKey : IEquatable<NodeKey>
    {
        private readonly string op;
        private readonly string[] inputs;
        private readonly ByteString attributes;
        private readonly string outputs;
        private readonly int hash;

        public NodeKey(NodeProto node)
        {
            op = $"{OnnxDomains.Normalize(node.Domain)}|{node.OpType}|{node.Overload}";
            inputs = [.. node.Input];
            // Which outputs the node produces: an omitted optional output is not the same computation's result.
            outputs = string.Concat(node.Output.Select(output => output.Length > 0 ? '1' : '0'));

            // Attributes compared as their serialized form in name order, without documentation.
            var message = new NodeProto();
            foreach (var attribute in node.Attribute.OrderBy(attribute => attribute.Name, StringComparer.Ordinal))
            {
                var copy = attribute.Clone();
                copy.DocString = string.Empty;
                message.Attribute.Add(copy);
            }

            attributes = message.ToByteString();
            var combined = new HashCode();
            combined.Add(op);
            combined.Add(outputs);
            foreach (var input in inputs)
            {
                combined.Add(input);
            }

            combined.Add(attributes);
            hash = combined.ToHashCode();
        }

        public bool Equals(NodeKey other) =>
            hash == other.hash && op == other.op && outputs == other.outputs && inputs.AsSpan().SequenceEqual(other.inputs) &&
            attributes.Equals(other.attributes);

        public override bool Equals(object? obj) => obj is NodeKey other && Equals(other);

        public override int GetHashCode() => hash;
    }
}
