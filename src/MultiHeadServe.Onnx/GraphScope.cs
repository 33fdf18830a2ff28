using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx;

/// <summary>
/// Which value names a graph defines and which it reads from enclosing graphs. Subgraphs (the branches of
/// If, the bodies of Loop and Scan) may read any value of the graphs around them by name, without listing
/// it as an input, so dependency analysis must look inside them.
/// </summary>
internal static class GraphScope
{
    /// <summary>The graphs held by a node's attributes.</summary>
    public static IEnumerable<GraphProto> Subgraphs(NodeProto node)
    {
        foreach (var attribute in node.Attribute)
        {
            if (attribute.G is { } graph)
            {
                yield return graph;
            }

            foreach (var item in attribute.Graphs)
            {
                yield return item;
            }
        }
    }

    /// <summary>Names the graph itself defines: inputs, initializers and node outputs.</summary>
    public static HashSet<string> DefinedNames(GraphProto graph)
    {
        var defined = new HashSet<string>(StringComparer.Ordinal);
        defined.UnionWith(graph.Input.Select(value => value.Name));
        defined.UnionWith(graph.Initializer.Select(tensor => tensor.Name));
        defined.UnionWith(graph.SparseInitializer.Select(tensor => tensor.Values?.Name ?? string.Empty));
        defined.UnionWith(graph.Node.SelectMany(node => node.Output));
        defined.Remove(string.Empty);
        return defined;
    }

    /// <summary>Names the graph or its own subgraphs read but do not define: references to enclosing scopes.</summary>
    public static HashSet<string> OuterReferences(GraphProto graph)
    {
        var defined = DefinedNames(graph);
        var outer = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
        {
            outer.UnionWith(node.Input);
            foreach (var subgraph in Subgraphs(node))
            {
                outer.UnionWith(OuterReferences(subgraph));
            }
        }

        // A subgraph output may name an enclosing value directly.
        outer.UnionWith(graph.Output.Select(value => value.Name));
        outer.ExceptWith(defined);
        outer.Remove(string.Empty);
        return outer;
    }

    /// <summary>Every value a node reads: its inputs and whatever its subgraphs read from outside.</summary>
    public static IEnumerable<string> Reads(NodeProto node) =>
        node.Input.Where(name => name.Length > 0).Concat(Subgraphs(node).SelectMany(OuterReferences));
}
