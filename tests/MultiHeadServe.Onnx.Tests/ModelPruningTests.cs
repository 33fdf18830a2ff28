using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx.Tests;

public sealed class ModelPruningTests
{
    /// <summary>
    /// One backbone and two heads, like an image model with a class head and a box head; the box head also
    /// reads a second input. A leftover node computes a value nothing uses.
    /// </summary>
    private static ModelProto TwoHeads() =>
        new ModelBuilder()
            .Input("image", TensorElementType.Float32, "batch", 8)
            .Input("anchors", TensorElementType.Float32, "batch", 4)
            .Output("class_logits", TensorElementType.Float32, "batch", 3)
            .Output("bbox", TensorElementType.Float32, "batch", 4)
            .Weights("backbone.weight", [8, 5])
            .Weights("class.weight", [5, 3])
            .Weights("bbox.weight", [5, 4])
            .Weights("unused.weight", [8, 2])
            .ValueInfo("features", TensorElementType.Float32, "batch", 5)
            .ValueInfo("bbox_raw", TensorElementType.Float32, "batch", 4)
            .Node("MatMul", ["image", "backbone.weight"], ["hidden"], "backbone/matmul")
            .Node("Relu", ["hidden"], ["features"], "backbone/relu")
            .Node("MatMul", ["image", "unused.weight"], ["leftover"], "leftover/matmul")
            .Node("MatMul", ["features", "class.weight"], ["class_logits"], "class/matmul")
            .Node("MatMul", ["features", "bbox.weight"], ["bbox_raw"], "bbox/matmul")
            .Node("Add", ["bbox_raw", "anchors"], ["bbox_offset"], "bbox/add")
            .Node("Sigmoid", ["bbox_offset"], ["bbox"], "bbox/sigmoid")
            .Build();

    [Fact]
    public void PruningToOneHeadKeepsTheBackboneAndDropsTheOtherHead()
    {
        var pruned = ModelPruning.Prune(TwoHeads(), ["class_logits"]).Graph;

        Assert.Equal(["backbone/matmul", "backbone/relu", "class/matmul"], pruned.Node.Select(node => node.Name));
        Assert.Equal(["backbone.weight", "class.weight"], pruned.Initializer.Select(tensor => tensor.Name));
        Assert.Equal(["class_logits"], pruned.Output.Select(output => output.Name));
        Assert.Equal(["features"], pruned.ValueInfo.Select(info => info.Name));
        GraphAssertions.WellFormed(pruned);
    }

    [Fact]
    public void InputsOnlyDroppedHeadsReadAreRemoved()
    {
        var pruned = new OnnxModel(ModelPruning.Prune(TwoHeads(), ["class_logits"]));
        var both = new OnnxModel(ModelPruning.Prune(TwoHeads(), ["bbox", "class_logits"]));

        Assert.Equal(["image"], pruned.Inputs.Select(input => input.Name));
        Assert.Equal(["image", "anchors"], both.Inputs.Select(input => input.Name));
    }

    [Fact]
    public void DeadNodesAreRemovedEvenWhenEveryOutputIsKept()
    {
        var pruned = ModelPruning.Prune(TwoHeads(), ["class_logits", "bbox"]).Graph;

        Assert.DoesNotContain(pruned.Node, node => node.Name == "leftover/matmul");
        Assert.DoesNotContain(pruned.Initializer, tensor => tensor.Name == "unused.weight");
        Assert.Equal(6, pruned.Node.Count);
        GraphAssertions.WellFormed(pruned);
    }

    [Fact]
    public void KeepingEveryOutputOfAGraphWithoutDeadNodesChangesNoByte()
    {
        var model = RankingMembers.Revenue();

        var pruned = ModelPruning.Prune(model, ["revenue"]);

        Assert.Equal(new OnnxModel(model).ToBytes(), new OnnxModel(pruned).ToBytes());
    }

    [Fact]
    public void OutputsKeepTheirGraphOrder()
    {
        var pruned = ModelPruning.Prune(TwoHeads(), ["bbox", "class_logits", "bbox"]);

        Assert.Equal(["class_logits", "bbox"], pruned.Graph.Output.Select(output => output.Name));
    }

    [Fact]
    public void PruningLeavesTheModelUnchanged()
    {
        var model = TwoHeads();
        var before = model.Clone();

        ModelPruning.Prune(model, ["bbox"]);

        Assert.Equal(before, model);
    }

    [Fact]
    public void ValuesReadOnlyInsideSubgraphsAreKept()
    {
        // The Loop body adds 'offset', computed in the main graph, without listing it as an input.
        var body = new GraphProto { Name = "body" };
        body.Input.Add(ModelBuilder.Value("iteration", TensorElementType.Int64));
        body.Input.Add(ModelBuilder.Value("condition_in", TensorElementType.Bool));
        body.Input.Add(ModelBuilder.Value("carried_in", TensorElementType.Float32, "batch", 8));
        body.Node.Add(Node("Identity", ["condition_in"], ["condition_out"], "body/condition"));
        body.Node.Add(Node("Add", ["carried_in", "offset"], ["carried_out"], "body/add"));
        body.Output.Add(ModelBuilder.Value("condition_out", TensorElementType.Bool));
        body.Output.Add(ModelBuilder.Value("carried_out", TensorElementType.Float32, "batch", 8));

        var builder = new ModelBuilder()
            .Input("image", TensorElementType.Float32, "batch", 8)
            .Input("trips", TensorElementType.Int64)
            .Output("refined", TensorElementType.Float32, "batch", 8)
            .Output("other", TensorElementType.Float32, "batch", 8)
            .Weights("offset.weight", [8])
            .Node("Relu", ["offset.weight"], ["offset"], "offset")
            .Node("Neg", ["image"], ["other"], "other")
            .Node("Loop", ["trips", string.Empty, "image"], ["refined"], "loop", ModelBuilder.GraphAttribute("body", body));

        var pruned = ModelPruning.Prune(builder.Build(), ["refined"]).Graph;

        Assert.Equal(["offset", "loop"], pruned.Node.Select(node => node.Name));
        Assert.Equal(["offset.weight"], pruned.Initializer.Select(tensor => tensor.Name));
        Assert.Equal(["image", "trips"], pruned.Input.Select(input => input.Name));
        GraphAssertions.WellFormed(pruned);
    }

    [Fact]
    public void QuantizationParametersOfKeptTensorsAreKept()
    {
        var model = TwoHeads();
        model.Graph.Initializer.Add(ModelBuilder.FloatTensor("class.scale", [1], [0.1f]));
        var annotation = new TensorAnnotation { TensorName = "class.weight" };
        annotation.QuantParameterTensorNames.Add(new StringStringEntryProto { Key = "SCALE_TENSOR", Value = "class.scale" });
        model.Graph.QuantizationAnnotation.Add(annotation);

        var classOnly = ModelPruning.Prune(model, ["class_logits"]).Graph;
        var bboxOnly = ModelPruning.Prune(model, ["bbox"]).Graph;

        Assert.Contains("class.scale", classOnly.Initializer.Select(tensor => tensor.Name));
        Assert.Single(classOnly.QuantizationAnnotation);
        Assert.DoesNotContain("class.scale", bboxOnly.Initializer.Select(tensor => tensor.Name));
        Assert.Empty(bboxOnly.QuantizationAnnotation);
    }

    [Fact]
    public void APlanGivesWhatPruningKeepsForEverySubsetOfOutputs()
    {
        var fused = ModelFusion.Fuse(RankingMembers.All(), new FuseOptions { DeduplicateComputation = true });
        foreach (var model in new[] { TwoHeads(), fused })
        {
            var plan = PruningPlan.Of(model);
            var outputs = model.Graph.Output.Select(output => output.Name).ToList();
            Assert.Equal(outputs, plan.Outputs);
            Assert.Equal(new OnnxModel(model).InitializerBytes, plan.TotalWeightBytes);
            for (ulong mask = 1; mask < 1UL << outputs.Count; mask++)
            {
                var names = outputs.Where((_, i) => (mask & (1UL << i)) != 0).ToList();
                var pruned = new OnnxModel(ModelPruning.Prune(model, names));

                Assert.Equal(mask, plan.Mask(names));
                Assert.Equal(pruned.InitializerBytes, plan.WeightBytes(mask));
                foreach (var input in model.Graph.Input)
                {
                    Assert.Equal(pruned.Inputs.Any(i => i.Name == input.Name), plan.Reads(input.Name, mask));
                }
            }
        }

        // two_heads: the backbone (8x5) and class (5x3) against the backbone, bbox (5x4) and the anchors.
        var twoHeads = PruningPlan.Of(TwoHeads());
        Assert.Equal((40 + 15) * 4, twoHeads.WeightBytes(0b01));
        Assert.False(twoHeads.Reads("anchors", 0b01));
        Assert.True(twoHeads.Reads("anchors", 0b10));
        Assert.Null(twoHeads.Mask(["class_logits", "nope"]));
    }

    [Fact]
    public void UnknownOutputIsRejectedListingTheOutputs()
    {
        var error = Assert.Throws<OnnxModelException>(() => ModelPruning.Prune(TwoHeads(), ["class_logits", "boxes"]));

        Assert.Equal("'boxes' is not an output of the model. Its outputs are: class_logits, bbox.", error.Message);
    }

    [Fact]
    public void KeepingNothingIsRejected() =>
        Assert.Throws<OnnxModelException>(() => ModelPruning.Prune(TwoHeads(), []));

    private static NodeProto Node(string opType, string[] inputs, string[] outputs, string name)
    {
        var node = new NodeProto { OpType = opType, Name = name };
        node.Input.Add(inputs);
        node.Output.Add(outputs);
        return node;
    }
}
