using System.Text.Json;
using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx.Tests;

/// <summary>
/// The graph tools on the real pretrained ResNet-18 (63.7 MB, CNTK, opset 8, batch 1) and the objects demo
/// model's heads: what the build does to produce the members the service fuses.
/// </summary>
public sealed class PretrainedBackboneTests
{
    [ResNetFact]
    public void ResNetAtBatchEightGivesEachRowWhatBatchOneGives()
    {
        var original = OnnxModel.Load(PretrainedBackbone.ResNet18).Proto;
        var dynamic = BatchDimension.MakeDynamic(original);
        var images = OrtRunner.Values(8 * 3 * 224 * 224, seed: 1).Select(value => value * 120).ToArray();
        var rowLength = images.Length / 8;

        var batched = OrtRunner.Run(dynamic, new Dictionary<string, (float[], long[])> { [PretrainedBackbone.Input] = (images, [8, 3, 224, 224]) });

        Assert.Equal("[batch, 512, 1, 1]", new OnnxModel(dynamic).Outputs[0].ShapeText);
        var features = batched[PretrainedBackbone.Output];
        Assert.Equal(8 * 512, features.Length);
        var originalBytes = Google.Protobuf.MessageExtensions.ToByteArray(original);
        foreach (var row in new[] { 0, 5 })
        {
            var alone = OrtRunner.Run(originalBytes, new Dictionary<string, (float[], long[])>
            {
                [PretrainedBackbone.Input] = (images.AsSpan(row * rowLength, rowLength).ToArray(), [1, 3, 224, 224]),
            })[PretrainedBackbone.Output];
            OrtRunner.AssertClose(alone, features.AsSpan(row * 512, 512), 1e-4f, $"row {row}");
        }
    }

    [ResNetFact]
    public void ObjectsMembersFuseWithTheBackboneOnceAndMatchTheKitsOutputs()
    {
        var members = ObjectsMembers();
        var fused = ModelFusion.Fuse(members, new FuseOptions { DeduplicateComputation = true });

        // The backbone (22 convolutions) once, the bbox head's own 1x1 convolution once.
        Assert.Equal(23, fused.Graph.Node.Count(node => node.OpType == "Conv"));
        Assert.Equal(22, fused.Graph.Node.Count(node => node.OpType == "BatchNormalization"));
        var fusedBytes = new OnnxModel(fused).InitializerBytes;
        var memberBytes = members.Sum(member => new OnnxModel(member.Model).InitializerBytes);
        Assert.InRange(fusedBytes, 1, memberBytes * 4 / 10);
        GraphAssertions.WellFormed(fused.Graph);

        using var reference = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(PretrainedBackbone.ObjectsVersionFolder, "reference.json")));
        var (pixels, shape) = ReferenceImages(reference.RootElement);
        var feed = new Dictionary<string, (float[], long[])> { ["OriginalInput"] = (pixels, shape) };
        var outputs = OrtRunner.Run(fused, feed);

        foreach (var output in reference.RootElement.GetProperty("outputs").EnumerateObject())
        {
            var expected = output.Value.GetProperty("data").EnumerateArray().Select(value => value.GetSingle()).ToArray();
            // The kit computed these in PyTorch from the same pixels: equal within 1e-4, absolute, logits and box alike.
            var difference = OrtRunner.MaxDifference(expected, outputs[output.Name]);
            Assert.True(difference <= 1e-4f, $"{output.Name}: the fused model differs from the kit by {difference}.");
        }

        var (prefix, model) = members[1];
        var alone = OrtRunner.Run(model, feed);
        OrtRunner.AssertClose(alone["bbox"], outputs["bbox"], 1e-6f, $"{prefix} member");
    }

    /// <summary>What the build makes: preprocessing + ResNet-18 as one dynamic-batch backbone, composed with each head.</summary>
    private static IReadOnlyList<(string Prefix, ModelProto Model)> ObjectsMembers()
    {
        var backbone = BatchDimension.MakeDynamic(ModelComposition.Compose(
            OnnxModel.Load(PretrainedBackbone.Preprocess).Proto,
            OnnxModel.Load(PretrainedBackbone.ResNet18).Proto,
            new ComposeOptions { Map = [("PreprocessedInput", PretrainedBackbone.Input)] }));
        ModelProto Member(string head, ComposeOptions? options = null) =>
            ModelComposition.Compose(backbone, OnnxModel.Load(Path.Combine(PretrainedBackbone.ObjectsVersionFolder, "heads", $"{head}.onnx")).Proto, options);
        return
        [
            ("class", Member("class")),
            ("bbox", Member("bbox", new ComposeOptions { Map = [(PretrainedBackbone.FeatureMap, "feature_map")], BackboneOutputs = BackboneOutputs.None })),
            ("colour", Member("colour")),
        ];
    }

    /// <summary>The reference PNGs as the served input: RGB pixel values 0..255, NCHW (model.json: scale 1, mean 0, std 1).</summary>
    private static (float[] Data, long[] Shape) ReferenceImages(JsonElement reference)
    {
        var images = reference.GetProperty("images").EnumerateArray().Select(image => KitPng.Decode(Convert.FromBase64String(image.GetString()!))).ToList();
        var (_, width, height) = images[0];
        var data = new float[images.Count * 3 * width * height];
        for (var n = 0; n < images.Count; n++)
        {
            var rgb = images[n].Rgb;
            for (var pixel = 0; pixel < width * height; pixel++)
            {
                for (var channel = 0; channel < 3; channel++)
                {
                    data[((n * 3 + channel) * height * width) + pixel] = rgb[pixel * 3 + channel];
                }
            }
        }

        return (data, [images.Count, 3, height, width]);
    }
}
