using Google.Protobuf;
using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx.Tests;

/// <summary>Builds small ONNX models in code, the way an exporter would write them.</summary>
internal sealed class ModelBuilder
{
    private readonly ModelProto model;

    public ModelBuilder(long irVersion = 8, long opset = 17, string producer = "builder")
    {
        model = new ModelProto
        {
            IrVersion = irVersion,
            ProducerName = producer,
            ProducerVersion = "1.0",
            Graph = new GraphProto { Name = "main_graph" },
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = string.Empty, Version = opset });
    }

    public GraphProto Graph => model.Graph;

    /// <summary>Dimensions are longs (fixed) or strings (symbolic).</summary>
    public ModelBuilder Input(string name, TensorElementType type, params object[] dims)
    {
        model.Graph.Input.Add(Value(name, type, dims));
        return this;
    }

    public ModelBuilder Output(string name, TensorElementType type, params object[] dims)
    {
        model.Graph.Output.Add(Value(name, type, dims));
        return this;
    }

    public ModelBuilder ValueInfo(string name, TensorElementType type, params object[] dims)
    {
        model.Graph.ValueInfo.Add(Value(name, type, dims));
        return this;
    }

    public ModelBuilder Weights(string name, long[] dims, float seed = 0.1f)
    {
        var count = (int)dims.Aggregate(1L, (product, dim) => product * dim);
        var values = Enumerable.Range(0, count).Select(i => seed * (i + 1)).ToArray();
        model.Graph.Initializer.Add(FloatTensor(name, dims, values));
        return this;
    }

    public ModelBuilder Indices(string name, params long[] values)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorElementType.Int64 };
        tensor.Dims.Add(values.Length);
        tensor.Int64Data.Add(values);
        model.Graph.Initializer.Add(tensor);
        return this;
    }

    public ModelBuilder Node(string opType, string[] inputs, string[] outputs, string? name = null, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = opType, Name = name ?? $"{opType}_{model.Graph.Node.Count}" };
        node.Input.Add(inputs);
        node.Output.Add(outputs);
        node.Attribute.Add(attributes);
        model.Graph.Node.Add(node);
        return this;
    }

    public ModelBuilder Opset(string domain, long version)
    {
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = domain, Version = version });
        return this;
    }

    public ModelBuilder Metadata(string key, string value)
    {
        model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        return this;
    }

    public ModelProto Build() => model.Clone();

    public static ValueInfoProto Value(string name, TensorElementType type, params object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var dim in dims)
        {
            shape.Dim.Add(dim switch
            {
                string symbol => new TensorShapeProto.Types.Dimension { DimParam = symbol },
                _ => new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(dim, System.Globalization.CultureInfo.InvariantCulture) },
            });
        }

        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    public static TensorProto FloatTensor(string name, long[] dims, float[] values)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorElementType.Float32 };
        tensor.Dims.Add(dims);
        var bytes = new byte[values.Length * sizeof(float)];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        tensor.RawData = ByteString.CopyFrom(bytes);
        return tensor;
    }

    public static AttributeProto IntAttribute(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto GraphAttribute(string name, GraphProto graph) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Graph, G = graph };
}
