using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx.Tests;

public sealed class ModelCompositionTests
{
    [Fact]
    public void OnlyOutputFeedsOnlyInputByDefault()
    {
        var composed = new OnnxModel(ModelComposition.Compose(SmallVisionModels.Backbone(), SmallVisionModels.ClassifierHead("logits", 0.1f)));

        Assert.Equal(["image"], composed.Inputs.Select(input => input.Name));
        Assert.Equal(["logits"], composed.Outputs.Select(output => output.Name));
        var reshape = composed.Proto.Graph.Node.Single(node => node.OpType == "Reshape");
        Assert.Equal("features", reshape.Input[0]);
        Assert.Contains(composed.Proto.Graph.ValueInfo, info => info.Name == "features");
        Assert.Equal(8, composed.IrVersion);
        GraphAssertions.WellFormed(composed.Proto.Graph);
    }

    [Fact]
    public void OldBackboneIsUpgradedToTheHeadsOperatorSet()
    {
        var composed = ModelComposition.Compose(SmallVisionModels.Backbone(), SmallVisionModels.ClassifierHead("logits", 0.1f));

        Assert.Equal(17, Assert.Single(composed.OpsetImport).Version);
        var batchNorm = composed.Graph.Node.Single(node => node.OpType == "BatchNormalization");
        Assert.DoesNotContain(batchNorm.Attribute, attribute => attribute.Name == "spatial");
        var split = composed.Graph.Node.Single(node => node.OpType == "Split");
        Assert.DoesNotContain(split.Attribute, attribute => attribute.Name == "split");
        Assert.Equal([1L, 1, 1], composed.Graph.Initializer.Single(tensor => tensor.Name == split.Input[1]).Int64Data);
    }

    [Fact]
    public void OperatorWhoseMeaningChangedIsRefusedWithTheVersions()
    {
        var backbone = SmallVisionModels.Backbone();
        backbone.Graph.Node.Add(new NodeProto { OpType = "Softmax", Name = "softmax", Input = { "features" }, Output = { "probabilities" } });

        var error = Assert.Throws<OnnxModelException>(() =>
            ModelComposition.Compose(backbone, SmallVisionModels.ClassifierHead("logits", 0.1f)));

        Assert.Contains("The backbone (operator set ai.onnx 8, the head 17) cannot be upgraded from operator set ai.onnx 8 to 17", error.Message, StringComparison.Ordinal);
        Assert.Contains("operator Softmax (node 'softmax')", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HeadMayReadAnIntermediateValueAndUnreadBackboneOutputsCanBeDropped()
    {
        var options = new ComposeOptions { Map = [("feature_map", "feature_map")], BackboneOutputs = BackboneOutputs.None };

        var composed = new OnnxModel(ModelComposition.Compose(SmallVisionModels.Backbone(), SmallVisionModels.BoxHead(), options));

        Assert.Equal(["bbox"], composed.Outputs.Select(output => output.Name));
        Assert.DoesNotContain(composed.Proto.Graph.Node, node => node.OpType == "AveragePool");
        GraphAssertions.WellFormed(composed.Proto.Graph);
    }

    [Fact]
    public void ClashingNamesAreRefusedUntilAPrefixSeparatesThem()
    {
        var backbone = SmallVisionModels.Backbone();
        backbone.Graph.Initializer.Single(tensor => tensor.Name == "conv.weight").Name = "fc.weight";
        backbone.Graph.Node.Single(node => node.Name == "conv").Input[1] = "fc.weight";
        var head = SmallVisionModels.ClassifierHead("logits", 0.1f);

        var error = Assert.Throws<OnnxModelException>(() => ModelComposition.Compose(backbone, head));
        var composed = ModelComposition.Compose(backbone, head, new ComposeOptions { HeadPrefix = "head/" });

        Assert.Contains("both use the names 'fc.weight'", error.Message, StringComparison.Ordinal);
        Assert.Contains(composed.Graph.Initializer, tensor => tensor.Name == "head/fc.weight");
        Assert.Equal("features", composed.Graph.Node.Single(node => node.OpType == "Reshape").Input[0]);
        GraphAssertions.WellFormed(composed.Graph);
    }

    [Fact]
    public void UnknownMappedNamesAreRefusedWithWhatExists()
    {
        var options = new ComposeOptions { Map = [("nope", "features")] };

        var error = Assert.Throws<OnnxModelException>(() =>
            ModelComposition.Compose(SmallVisionModels.Backbone(), SmallVisionModels.ClassifierHead("logits", 0.1f), options));

        Assert.Contains("The backbone has no value 'nope'. Its outputs are: features.", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ComposedModelComputesTheBackboneThenTheHead()
    {
        var backbone = BatchDimension.MakeDynamic(SmallVisionModels.Backbone());
        var head = SmallVisionModels.ClassifierHead("logits", 0.1f);
        var composed = BatchDimension.MakeDynamic(ModelComposition.Compose(backbone, head));
        var images = SmallVisionModels.Images(4, seed: 5);

        var features = OrtRunner.Run(backbone, new Dictionary<string, (float[], long[])> { ["image"] = images })["features"];
        var expected = OrtRunner.Run(head, new Dictionary<string, (float[], long[])> { ["features"] = (features, [4, 4, 1, 1]) })["logits"];
        var actual = OrtRunner.Run(composed, new Dictionary<string, (float[], long[])> { ["image"] = images })["logits"];

        OrtRunner.AssertClose(expected, actual, 1e-5f, "logits");
    }

    [Fact]
    public void UpgradedBackboneComputesWhatTheOriginalDid()
    {
        var original = SmallVisionModels.Backbone();
        var upgraded = OpsetUpgrade.Upgrade(original, 17, "The backbone");
        var images = SmallVisionModels.Images(1, seed: 9);
        var feed = new Dictionary<string, (float[], long[])> { ["image"] = images };

        OrtRunner.AssertClose(OrtRunner.Run(original, feed)["features"], OrtRunner.Run(upgraded, feed)["features"], 1e-6f, "features");
    }
}
