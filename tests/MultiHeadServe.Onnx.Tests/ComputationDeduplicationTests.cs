using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx.Tests;

/// <summary>Fusion with <see cref="FuseOptions.DeduplicateComputation"/>: members that embed one backbone compute it once.</summary>
public sealed class ComputationDeduplicationTests
{
    private static readonly FuseOptions Dedupe = new() { DeduplicateComputation = true };

    [Fact]
    public void SharedBackboneNodesAppearOnceAndEachHeadStays()
    {
        var members = Members();

        var fused = ModelFusion.Fuse(members, Dedupe);

        var backboneNodes = SmallVisionModels.Backbone().Graph.Node.Count;
        var headNodes = members.Sum(member => member.Model.Graph.Node.Count - backboneNodes);
        Assert.Equal(backboneNodes + headNodes, fused.Graph.Node.Count);
        Assert.Single(fused.Graph.Node, node => node.OpType == "Conv");
        Assert.Single(fused.Graph.Node, node => node.OpType == "BatchNormalization");
        Assert.Equal(3, fused.Graph.Node.Count(node => node.OpType == "Gemm"));
        Assert.Equal(["class_logits", "size_logits", "bbox"], fused.Graph.Output.Select(output => output.Name));
        GraphAssertions.WellFormed(fused.Graph);
    }

    [Fact]
    public void WithoutTheOptionEveryMemberKeepsItsOwnBackbone()
    {
        var fused = ModelFusion.Fuse(Members());

        Assert.Equal(3, fused.Graph.Node.Count(node => node.OpType == "Conv"));
    }

    [Fact]
    public void FusedDeduplicatedModelReturnsWhatEachMemberReturns()
    {
        var members = Members();
        var fused = ModelFusion.Fuse(members, Dedupe);
        var feed = new Dictionary<string, (float[], long[])> { ["image"] = SmallVisionModels.Images(8, seed: 11) };

        var outputs = OrtRunner.Run(fused, feed);

        foreach (var (prefix, model) in members)
        {
            foreach (var (name, expected) in OrtRunner.Run(model, feed))
            {
                OrtRunner.AssertClose(expected, outputs[name], 1e-6f, $"{prefix}: {name}");
            }
        }
    }

    [Fact]
    public void SameOperatorOnDifferentInputsOrAttributesIsNotMerged()
    {
        var model = new ModelBuilder()
            .Input("x", TensorElementType.Float32, "batch", 4)
            .Output("a", TensorElementType.Float32, "batch", 4)
            .Output("b", TensorElementType.Float32, "batch", 4)
            .Output("c", TensorElementType.Float32, "batch", 4)
            .Node("Relu", ["x"], ["r1"], "r1")
            .Node("Relu", ["x"], ["r2"], "r2")
            .Node("LeakyRelu", ["r1"], ["a"], "l1", SmallVisionModels.Float("alpha", 0.1f))
            .Node("LeakyRelu", ["r2"], ["b"], "l2", SmallVisionModels.Float("alpha", 0.2f))
            .Node("LeakyRelu", ["r2"], ["c"], "l3", SmallVisionModels.Float("alpha", 0.1f))
            .Build();

        var graph = ModelFusion.Fuse([("m", model)], Dedupe).Graph;

        // r2 merges into r1; then l3 is l1 again (an Identity keeps the output name c), l2 differs by alpha.
        Assert.Single(graph.Node, node => node.OpType == "Relu");
        Assert.Equal(2, graph.Node.Count(node => node.OpType == "LeakyRelu"));
        var identity = Assert.Single(graph.Node, node => node.OpType == "Identity");
        Assert.Equal(["a"], identity.Input);
        Assert.Equal(["c"], identity.Output);
        GraphAssertions.WellFormed(graph);
    }

    [Fact]
    public void NodeThatAlsoProducesAnOptionalOutputIsNotMergedIntoOneThatDoesNot()
    {
        var model = new ModelBuilder()
            .Input("x", TensorElementType.Float32, 1, 1, 4, 4)
            .Output("a", TensorElementType.Float32, 1, 1, 2, 2)
            .Output("b", TensorElementType.Float32, 1, 1, 2, 2)
            .Output("indices", TensorElementType.Int64, 1, 1, 2, 2)
            .Node("MaxPool", ["x"], ["a"], "p1", SmallVisionModels.Ints("kernel_shape", 2, 2), SmallVisionModels.Ints("strides", 2, 2))
            .Node("MaxPool", ["x"], ["b", "indices"], "p2", SmallVisionModels.Ints("kernel_shape", 2, 2), SmallVisionModels.Ints("strides", 2, 2))
            .Build();

        var graph = ModelFusion.Fuse([("m", model)], Dedupe).Graph;

        Assert.Equal(2, graph.Node.Count(node => node.OpType == "MaxPool"));
    }

    [Fact]
    public void RandomGeneratorsAreNeverMerged()
    {
        var model = new ModelBuilder()
            .Input("x", TensorElementType.Float32, 2, 2)
            .Output("a", TensorElementType.Float32, 2, 2)
            .Output("b", TensorElementType.Float32, 2, 2)
            .Node("RandomUniformLike", ["x"], ["a"], "u1")
            .Node("RandomUniformLike", ["x"], ["b"], "u2")
            .Build();

        var graph = ModelFusion.Fuse([("m", model)], Dedupe).Graph;

        Assert.Equal(2, graph.Node.Count(node => node.OpType == "RandomUniformLike"));
    }

    [Fact]
    public void MembersAtAnOlderOpsetAreUpgradedBeforeMerging()
    {
        var old = SmallVisionModels.Backbone();
        old.Graph.Output[0].Name = "features";
        IReadOnlyList<(string, ModelProto)> members =
        [
            ("old", old),
            ("new", ModelComposition.Compose(SmallVisionModels.Backbone(), SmallVisionModels.ClassifierHead("logits", 0.1f),
                new ComposeOptions { BackboneOutputs = BackboneOutputs.All })),
        ];

        var fused = ModelFusion.Fuse(members, Dedupe with { OutputNames = new Dictionary<MemberOutput, string> { [new("new", "features")] = "new_features" } });

        Assert.Equal(17, Assert.Single(fused.OpsetImport).Version);
        Assert.Single(fused.Graph.Node, node => node.OpType == "Conv");
        Assert.Equal("ai.onnx:8", fused.MetadataProps.Single(entry => entry.Key == "multiheadserve.member.old.opsets").Value);
    }

    /// <summary>Three teams' deployable models: the same backbone composed with each one's head.</summary>
    private static IReadOnlyList<(string Prefix, ModelProto Model)> Members()
    {
        var backbone = BatchDimension.MakeDynamic(SmallVisionModels.Backbone());
        var toMap = new ComposeOptions { Map = [("feature_map", "feature_map")], BackboneOutputs = BackboneOutputs.None };
        return
        [
            ("class", ModelComposition.Compose(backbone, SmallVisionModels.ClassifierHead("class_logits", 0.1f))),
            ("size", ModelComposition.Compose(backbone, SmallVisionModels.ClassifierHead("size_logits", 0.2f))),
            ("bbox", ModelComposition.Compose(backbone, SmallVisionModels.BoxHead(), toMap)),
        ];
    }
}
