using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx.Tests;

/// <summary>Structural checks an ONNX runtime would make when loading a graph.</summary>
internal static class GraphAssertions
{
    /// <summary>
    /// Every value is defined once, every node reads only values defined before it (nodes are topologically
    /// sorted), subgraphs read only values in scope, graph outputs exist and node names are unique.
    /// </summary>
    public static void WellFormed(GraphProto graph, ISet<string>? outerScope = null)
    {
        var defined = new HashSet<string>(outerScope ?? new HashSet<string>(), StringComparer.Ordinal);
        foreach (var name in graph.Input.Select(input => input.Name)
                     .Concat(graph.Initializer.Select(tensor => tensor.Name))
                     .Concat(graph.SparseInitializer.Select(tensor => tensor.Values.Name))
                     .Distinct(StringComparer.Ordinal))
        {
            Assert.True(defined.Add(name), $"'{name}' is defined twice.");
        }

        var nodeNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
        {
            Assert.True(node.Name.Length == 0 || nodeNames.Add(node.Name), $"Node name '{node.Name}' is used twice.");
            foreach (var input in node.Input.Where(input => input.Length > 0))
            {
                Assert.True(defined.Contains(input), $"Node '{node.Name}' reads '{input}', which is not defined before it.");
            }

            foreach (var attribute in node.Attribute)
            {
                foreach (var subgraph in attribute.Graphs.Append(attribute.G).OfType<GraphProto>())
                {
                    WellFormed(subgraph, defined);
                }
            }

            foreach (var output in node.Output.Where(output => output.Length > 0))
            {
                Assert.True(defined.Add(output), $"'{output}' is defined twice (again by node '{node.Name}').");
            }
        }

        foreach (var output in graph.Output)
        {
            Assert.True(defined.Contains(output.Name), $"Graph output '{output.Name}' is not defined.");
        }
    }
}
