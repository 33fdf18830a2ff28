using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx.Tests;

public sealed class BatchDimensionTests
{
    [Fact]
    public void FixedBatchOfInputsOutputsAndValueInfosBecomesTheSymbol()
    {
        var dynamic = new OnnxModel(BatchDimension.MakeDynamic(SmallVisionModels.Backbone()));

        Assert.Equal("[batch, 3, 8, 8]", Assert.Single(dynamic.Inputs).ShapeText);
        Assert.Equal("[batch, 4, 1, 1]", Assert.Single(dynamic.Outputs).ShapeText);
        Assert.Equal("[batch, 4, 4, 4]", ValueSignatures.From(Assert.Single(dynamic.Proto.Graph.ValueInfo)).ShapeText);
        GraphAssertions.WellFormed(dynamic.Proto.Graph);
    }

    [Fact]
    public void ReshapeShapeThatSpellsTheBatchCopiesItFromTheInputInstead()
    {
        var model = FixedBatchClassifier(batch: 2);

        var graph = BatchDimension.MakeDynamic(model, "n").Graph;

        var reshape = graph.Node.Single(node => node.OpType == "Reshape");
        var shape = graph.Initializer.Single(tensor => tensor.Name == reshape.Input[1]);
        Assert.Equal([0L, SmallVisionModels.Features], shape.Int64Data);
        // The original constant is left for any other reader.
        Assert.Equal([2L, SmallVisionModels.Features], graph.Initializer.Single(tensor => tensor.Name == "flat_shape").Int64Data);
        Assert.Equal("[n, 3]", ValueSignatures.From(graph.Output[0]).ShapeText);
    }

    [Fact]
    public void ShapeTensorsThatHappenToStartWithTheBatchSizeKeepTheirSize()
    {
        var model = new ModelBuilder()
            .Input("x", TensorElementType.Float32, 1, 4)
            .Output("y", TensorElementType.Float32, 1, 4)
            .ValueInfo("rank_one", TensorElementType.Int64, 1)
            .ValueInfo("doubled", TensorElementType.Float32, 1, 4)
            .Indices("last", -1)
            .Node("Shape", ["x"], ["shape"], "shape")
            .Node("Gather", ["shape", "last"], ["rank_one"], "gather", ModelBuilder.IntAttribute("axis", 0))
            .Node("Add", ["x", "x"], ["doubled"], "add")
            .Node("Identity", ["doubled"], ["y"], "identity")
            .Build();

        var graph = BatchDimension.MakeDynamic(model).Graph;

        Assert.Equal("[1]", ValueSignatures.From(graph.ValueInfo.Single(info => info.Name == "rank_one")).ShapeText);
        Assert.Equal("[batch, 4]", ValueSignatures.From(graph.ValueInfo.Single(info => info.Name == "doubled")).ShapeText);
    }

    [Fact]
    public void ModelWithADynamicBatchComesBackUnchanged()
    {
        var head = SmallVisionModels.ClassifierHead("logits", 0.1f);

        Assert.Equal(head, BatchDimension.MakeDynamic(head));
    }

    [Fact]
    public void ShapeConstantTheRewriteCannotFollowIsRefusedByNode()
    {
        var model = new ModelBuilder()
            .Input("x", TensorElementType.Float32, 1, 4)
            .Output("y", TensorElementType.Float32, 1, 4, 4)
            .Indices("target", 1, 4, 4)
            .Node("Unsqueeze", ["x", "axes"], ["x3"], "unsqueeze")
            .Indices("axes", 2)
            .Node("Expand", ["x3", "target"], ["y"], "expand")
            .Build();

        var error = Assert.Throws<OnnxModelException>(() => BatchDimension.MakeDynamic(model));

        Assert.Contains("Node 'expand' (Expand) reads a constant shape that starts with the batch size 1", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void InputsThatDisagreeOnTheBatchAreRefused()
    {
        var model = new ModelBuilder()
            .Input("a", TensorElementType.Float32, 1, 4)
            .Input("b", TensorElementType.Float32, 2, 4)
            .Output("c", TensorElementType.Float32, 2, 4)
            .Node("Add", ["a", "b"], ["c"])
            .Build();

        var error = Assert.Throws<OnnxModelException>(() => BatchDimension.MakeDynamic(model));

        Assert.Contains("disagree on the batch size", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BatchOfEightGivesEachRowWhatBatchOfOneGives()
    {
        var original = FixedBatchClassifier(batch: 1);
        var dynamic = BatchDimension.MakeDynamic(original);
        var (images, _) = SmallVisionModels.Images(8, seed: 3);
        var rowLength = images.Length / 8;

        var batched = OrtRunner.Run(dynamic, Feed(images, 8))["logits"];

        for (var row = 0; row < 8; row++)
        {
            var alone = OrtRunner.Run(original, Feed(images.AsSpan(row * rowLength, rowLength).ToArray(), 1))["logits"];
            OrtRunner.AssertClose(alone, batched.AsSpan(row * 3, 3), 1e-5f, $"row {row}");
        }
    }

    private static Dictionary<string, (float[] Data, long[] Shape)> Feed(float[] images, int batch) =>
        new() { ["image"] = (images, [batch, SmallVisionModels.Channels, SmallVisionModels.Size, SmallVisionModels.Size]) };

    /// <summary>The backbone and a classifier in one graph at a fixed batch, flattening through Reshape([batch, 4]).</summary>
    private static ModelProto FixedBatchClassifier(int batch)
    {
        var model = new ModelBuilder(opset: 17)
            .Input("image", TensorElementType.Float32, batch, 3, 8, 8)
            .Output("logits", TensorElementType.Float32, batch, 3)
            .Weights("conv.weight", [SmallVisionModels.Features, 3, 3, 3], 0.01f)
            .Indices("flat_shape", batch, SmallVisionModels.Features)
            .Weights("fc.weight", [3, SmallVisionModels.Features], 0.3f)
            .Node("Conv", ["image", "conv.weight"], ["conv"], "conv", SmallVisionModels.Ints("kernel_shape", 3, 3), SmallVisionModels.Ints("strides", 2, 2))
            .Node("Relu", ["conv"], ["relu"], "relu")
            .Node("GlobalAveragePool", ["relu"], ["pooled"], "pool")
            .Node("Reshape", ["pooled", "flat_shape"], ["flat"], "flatten")
            .Node("Gemm", ["flat", "fc.weight"], ["logits"], "fc", ModelBuilder.IntAttribute("transB", 1))
            .Build();
        return model;
    }
}
