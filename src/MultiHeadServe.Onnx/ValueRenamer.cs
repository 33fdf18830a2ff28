using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx;

/// <summary>
/// Renames, in place, every value, node and graph name of a graph and of all its subgraphs. Value names are
/// renamed with one function at every nesting level, so that a subgraph's reference to an enclosing value
/// follows that value's new name.
/// </summary>
internal sealed class ValueRenamer(Func<string, string> value, Func<string, string> node, Func<string, string> graph)
{
    public void Apply(GraphProto target)
    {
        foreach (var item in target.Node)
        {
            Rename(item.Input);
            Rename(item.Output);
            if (item.Name.Length > 0)
            {
                item.Name = node(item.Name);
            }

            foreach (var spec in item.DeviceConfigurations.SelectMany(configuration => configuration.ShardingSpec))
            {
                spec.TensorName = RenameValue(spec.TensorName);
            }

            foreach (var subgraph in GraphScope.Subgraphs(item))
            {
                if (subgraph.Name.Length > 0)
                {
                    subgraph.Name = graph(subgraph.Name);
                }

                Apply(subgraph);
            }
        }

        foreach (var tensor in target.Initializer)
        {
            tensor.Name = RenameValue(tensor.Name);
        }

        // A sparse initializer is named by its values tensor.
        foreach (var tensor in target.SparseInitializer.Where(tensor => tensor.Values is not null))
        {
            tensor.Values.Name = RenameValue(tensor.Values.Name);
        }

        foreach (var info in target.Input.Concat(target.Output).Concat(target.ValueInfo))
        {
            info.Name = RenameValue(info.Name);
        }

        foreach (var annotation in target.QuantizationAnnotation)
        {
            annotation.TensorName = RenameValue(annotation.TensorName);
            foreach (var entry in annotation.QuantParameterTensorNames)
            {
                entry.Value = RenameValue(entry.Value);
            }
        }
    }

    private string RenameValue(string name) => name.Length == 0 ? name : value(name);

    private void Rename(Google.Protobuf.Collections.RepeatedField<string> names)
    {
        for (var i = 0; i < names.Count; i++)
        {
            names[i] = RenameValue(names[i]);
        }
    }
}
