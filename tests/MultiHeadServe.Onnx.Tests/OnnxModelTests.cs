using Google.Protobuf;
using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx.Tests;

public sealed class OnnxModelTests : IDisposable
{
    private readonly DirectoryInfo folder = Directory.CreateTempSubdirectory("mhs-onnx-tests-");

    public void Dispose() => folder.Delete(recursive: true);

    [Fact]
    public void InspectionReportsInputsOutputsWithSymbolicDimensions()
    {
        var model = new OnnxModel(RankingMembers.Revenue());

        var input = Assert.Single(model.Inputs);
        Assert.Equal("features", input.Name);
        Assert.Equal("tensor(float32)", input.Type);
        Assert.Equal(TensorElementType.Float32, input.ElementType);
        Assert.Equal([new TensorDimension(null, "batch"), new TensorDimension(6, null)], input.Shape);
        Assert.Equal("[batch, 6]", input.ShapeText);

        var output = Assert.Single(model.Outputs);
        Assert.Equal("revenue", output.Name);
        Assert.Equal("[batch, 1]", output.ShapeText);
    }

    [Fact]
    public void InspectionCountsNodesInitializersAndTheirBytes()
    {
        var model = new OnnxModel(RankingMembers.Revenue());

        Assert.Equal(6, model.NodeCount);
        Assert.Equal(5, model.InitializerCount);
        // int64 indices [3], float weights [3,4], [4], [4,1], [1].
        Assert.Equal((3 * 8) + ((12 + 4 + 4 + 1) * 4), model.InitializerBytes);
        Assert.Equal(17, Assert.Single(model.OpsetImports).Version);
        Assert.Equal("ai.onnx", model.OpsetImports[0].DisplayDomain);
        Assert.Equal(8, model.IrVersion);
        Assert.Equal("pytorch 1.0", model.Producer);
    }

    [Fact]
    public void InitializerBytesCountSubByteAndSparseTensorsByShape()
    {
        var proto = new ModelBuilder().Input("x", TensorElementType.Float32, 2).Output("x", TensorElementType.Float32, 2).Build();
        var packed = new TensorProto { Name = "int4", DataType = (int)TensorElementType.Int4, RawData = ByteString.CopyFrom(new byte[3]) };
        packed.Dims.Add(5);
        proto.Graph.Initializer.Add(packed);
        var values = new TensorProto { Name = "sparse", DataType = (int)TensorElementType.Float32 };
        values.Dims.Add(2);
        values.FloatData.Add([1f, 2f]);
        var indices = new TensorProto { DataType = (int)TensorElementType.Int64 };
        indices.Dims.Add(2);
        indices.Int64Data.Add([0, 7]);
        var sparse = new SparseTensorProto { Values = values, Indices = indices };
        sparse.Dims.Add(10);
        proto.Graph.SparseInitializer.Add(sparse);

        var model = new OnnxModel(proto);

        Assert.Equal(2, model.InitializerCount);
        // Five 4-bit values take 3 bytes; the sparse tensor stores 2 floats and 2 int64 indices.
        Assert.Equal(3 + 8 + 16, model.InitializerBytes);
    }

    [Fact]
    public void InputsLeaveOutGraphInputsThatAreStoredWeights()
    {
        // Older exporters list every weight as a graph input too; those are not features to feed.
        var proto = new ModelBuilder(irVersion: 3)
            .Input("features", TensorElementType.Float32, "batch", 2)
            .Input("weight", TensorElementType.Float32, 2, 1)
            .Output("y", TensorElementType.Float32, "batch", 1)
            .Weights("weight", [2, 1])
            .Node("MatMul", ["features", "weight"], ["y"])
            .Build();

        Assert.Equal(["features"], new OnnxModel(proto).Inputs.Select(input => input.Name));
    }

    [Fact]
    public void NonTensorValuesAreDescribedWithoutShape()
    {
        var proto = new ModelBuilder().Input("x", TensorElementType.Float32, 1).Build();
        var tensor = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorElementType.Float32 } };
        proto.Graph.Output.Add(new ValueInfoProto
        {
            Name = "scores",
            Type = new TypeProto
            {
                SequenceType = new TypeProto.Types.Sequence
                {
                    ElemType = new TypeProto { MapType = new TypeProto.Types.Map { KeyType = (int)TensorElementType.Int64, ValueType = tensor } },
                },
            },
        });
        proto.Graph.Output.Add(new ValueInfoProto { Name = "unranked", Type = tensor });

        var outputs = new OnnxModel(proto).Outputs;

        Assert.Equal("seq(map(int64,tensor(float32)))", outputs[0].Type);
        Assert.Equal(TensorElementType.Undefined, outputs[0].ElementType);
        Assert.Null(outputs[0].Shape);
        Assert.Equal("tensor(float32)", outputs[1].Type);
        Assert.Equal("?", outputs[1].ShapeText);
    }

    [Fact]
    public void SaveThenLoadIsByteStable()
    {
        var path = Path.Combine(folder.FullName, "revenue.onnx");
        var original = new OnnxModel(RankingMembers.Revenue());

        original.Save(path);
        var written = File.ReadAllBytes(path);
        var loaded = OnnxModel.Load(path);

        Assert.Equal(original.ToBytes(), written);
        Assert.Equal(written, loaded.ToBytes());
        Assert.Equal(original.Proto, loaded.Proto);
    }

    [Fact]
    public void LoadingAndSavingKeepsTheBytesOfProto2Writers()
    {
        // What the reference implementation writes: an explicitly empty opset domain, unpacked repeated
        // integers, and a field this schema does not know. None of it may change on a round trip.
        var attribute = Message(output =>
        {
            output.WriteTag(1, WireFormat.WireType.LengthDelimited);
            output.WriteString("perm");
            output.WriteTag(8, WireFormat.WireType.Varint);
            output.WriteInt64(1);
            output.WriteTag(8, WireFormat.WireType.Varint);
            output.WriteInt64(0);
            output.WriteTag(20, WireFormat.WireType.Varint);
            output.WriteEnum((int)AttributeProto.Types.AttributeType.Ints);
        });
        var node = Message(output =>
        {
            output.WriteTag(1, WireFormat.WireType.LengthDelimited);
            output.WriteString("x");
            output.WriteTag(2, WireFormat.WireType.LengthDelimited);
            output.WriteString("y");
            output.WriteTag(3, WireFormat.WireType.LengthDelimited);
            output.WriteString("transpose");
            output.WriteTag(4, WireFormat.WireType.LengthDelimited);
            output.WriteString("Transpose");
            output.WriteTag(5, WireFormat.WireType.LengthDelimited);
            output.WriteBytes(attribute);
            output.WriteTag(7, WireFormat.WireType.LengthDelimited);
            output.WriteString(string.Empty);
        });
        var initializer = Message(output =>
        {
            output.WriteTag(1, WireFormat.WireType.Varint);
            output.WriteInt64(2);
            output.WriteTag(1, WireFormat.WireType.Varint);
            output.WriteInt64(3);
            output.WriteTag(2, WireFormat.WireType.Varint);
            output.WriteInt32((int)TensorElementType.Float32);
            output.WriteTag(8, WireFormat.WireType.LengthDelimited);
            output.WriteString("unused");
            output.WriteTag(9, WireFormat.WireType.LengthDelimited);
            output.WriteBytes(ByteString.CopyFrom(new byte[24]));
        });
        var graph = Message(output =>
        {
            output.WriteTag(1, WireFormat.WireType.LengthDelimited);
            output.WriteBytes(node);
            output.WriteTag(2, WireFormat.WireType.LengthDelimited);
            output.WriteString("main_graph");
            output.WriteTag(5, WireFormat.WireType.LengthDelimited);
            output.WriteBytes(initializer);
            output.WriteTag(11, WireFormat.WireType.LengthDelimited);
            output.WriteBytes(ModelBuilder.Value("x", TensorElementType.Float32, 3, 2).ToByteString());
            output.WriteTag(12, WireFormat.WireType.LengthDelimited);
            output.WriteBytes(ModelBuilder.Value("y", TensorElementType.Float32, 2, 3).ToByteString());
        });
        var opset = Message(output =>
        {
            output.WriteTag(1, WireFormat.WireType.LengthDelimited);
            output.WriteString(string.Empty);
            output.WriteTag(2, WireFormat.WireType.Varint);
            output.WriteInt64(17);
        });
        var model = Message(output =>
        {
            output.WriteTag(1, WireFormat.WireType.Varint);
            output.WriteInt64(8);
            output.WriteTag(2, WireFormat.WireType.LengthDelimited);
            output.WriteString("pytorch");
            output.WriteTag(7, WireFormat.WireType.LengthDelimited);
            output.WriteBytes(graph);
            output.WriteTag(8, WireFormat.WireType.LengthDelimited);
            output.WriteBytes(opset);
            output.WriteTag(99, WireFormat.WireType.Varint);
            output.WriteInt64(5);
        });

        var loaded = OnnxModel.FromBytes(model.ToByteArray());

        Assert.Equal([1L, 0L], loaded.Proto.Graph.Node[0].Attribute[0].Ints);
        Assert.True(loaded.Proto.OpsetImport[0].HasDomain);
        Assert.Equal(model.ToByteArray(), loaded.ToBytes());
    }

    [Fact]
    public void SaveReplacesAnExistingFileAndLeavesNothingElseBehind()
    {
        var path = Path.Combine(folder.FullName, "model.onnx");
        File.WriteAllText(path, "old content");

        new OnnxModel(RankingMembers.Click()).Save(path);

        Assert.Equal("click_logit", Assert.Single(OnnxModel.Load(path).Outputs).Name);
        Assert.Equal([path], Directory.GetFiles(folder.FullName));
    }

    [Fact]
    public void LoadingATextFileFailsNamingTheFile()
    {
        var path = Path.Combine(folder.FullName, "notes.onnx");
        File.WriteAllText(path, "these are not the weights you are looking for");

        var error = Assert.Throws<OnnxModelException>(() => OnnxModel.Load(path));

        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.Contains("not an ONNX model", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoadingAnEmptyFileFails()
    {
        var path = Path.Combine(folder.FullName, "empty.onnx");
        File.WriteAllBytes(path, []);

        var error = Assert.Throws<OnnxModelException>(() => OnnxModel.Load(path));

        Assert.Contains("no graph", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoadingFromAStreamReadsTheWholeModel()
    {
        var bytes = new OnnxModel(RankingMembers.Dwell()).ToBytes();
        using var stream = new MemoryStream(bytes);

        var model = OnnxModel.Load(stream);

        Assert.Equal(bytes, model.ToBytes());
    }

    [Fact]
    public void ElementTypeNamesMatchTheManifestSpelling()
    {
        Assert.Equal("float32", TensorElementType.Float32.ToName());
        Assert.Equal("int64", TensorElementType.Int64.ToName());
        Assert.True(TensorElementTypeNames.TryParse("float16", out var half));
        Assert.Equal(TensorElementType.Float16, half);
        Assert.False(TensorElementTypeNames.TryParse("float", out _));
        Assert.Equal("type99", ((TensorElementType)99).ToName());
    }

    private static ByteString Message(Action<CodedOutputStream> write)
    {
        using var buffer = new MemoryStream();
        using (var output = new CodedOutputStream(buffer, leaveOpen: true))
        {
            write(output);
        }

        return ByteString.CopyFrom(buffer.ToArray());
    }
}
