using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx.Tests;

/// <summary>
/// Small image models shaped like a pretrained backbone and the heads teams train on it: a backbone
/// exported at batch 1 by an old exporter (opset 8, BatchNormalization with <c>spatial</c>, a Split with
/// its sizes as an attribute, a Reshape whose constant shape spells the batch size), and heads exported
/// by a current one (opset 17, dynamic batch).
/// </summary>
internal static class SmallVisionModels
{
    public const int Channels = 3;
    public const int Size = 8;
    public const int Features = 4;

    /// <summary>image [1, 3, 8, 8] -> features [1, 4, 1, 1] and feature_map [1, 4, 4, 4].</summary>
    public static ModelProto Backbone() =>
        new ModelBuilder(irVersion: 3, opset: 8, producer: "CNTK")
            .Input("image", TensorElementType.Float32, 1, Channels, Size, Size)
            .Output("features", TensorElementType.Float32, 1, Features, 1, 1)
            .ValueInfo("conv", TensorElementType.Float32, 1, Features, 4, 4)
            .Weights("conv.weight", [Features, Channels, 3, 3], 0.01f)
            .Weights("bn.scale", [Features], 0.5f)
            .Weights("bn.bias", [Features], 0.1f)
            .Weights("bn.mean", [Features], 0.05f)
            .Weights("bn.var", [Features], 1f)
            .Node("Split", ["image"], ["r", "g", "b"], "split", Ints("split", 1, 1, 1), ModelBuilder.IntAttribute("axis", 1))
            .Node("Concat", ["b", "g", "r"], ["bgr"], "concat", ModelBuilder.IntAttribute("axis", 1))
            .Node("Conv", ["bgr", "conv.weight"], ["conv"], "conv", Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Ints("pads", 1, 1, 0, 0))
            .Node("BatchNormalization", ["conv", "bn.scale", "bn.bias", "bn.mean", "bn.var"], ["bn"], "bn",
                ModelBuilder.IntAttribute("spatial", 1), Float("epsilon", 1e-5f))
            .Node("Relu", ["bn"], ["feature_map"], "relu")
            .Node("AveragePool", ["feature_map"], ["features"], "pool", Ints("kernel_shape", 4, 4))
            .Build();

    /// <summary>features [batch, 4, 1, 1] -> logits [batch, 3], with a Reshape like an exporter's flatten.</summary>
    public static ModelProto ClassifierHead(string output, float seed) =>
        new ModelBuilder(producer: "pytorch")
            .Input("features", TensorElementType.Float32, "batch", Features, 1, 1)
            .Output(output, TensorElementType.Float32, "batch", 3)
            .Indices("flat_shape", -1, Features)
            .Weights("fc.weight", [3, Features], seed)
            .Weights("fc.bias", [3], 0.01f)
            .Node("Reshape", ["features", "flat_shape"], ["flat"], "/Reshape")
            .Node("Gemm", ["flat", "fc.weight", "fc.bias"], [output], "/fc/Gemm", ModelBuilder.IntAttribute("transB", 1))
            .Build();

    /// <summary>feature_map [batch, 4, 4, 4] -> box [batch, 4] in 0..1.</summary>
    public static ModelProto BoxHead() =>
        new ModelBuilder(producer: "pytorch")
            .Input("feature_map", TensorElementType.Float32, "batch", Features, 4, 4)
            .Output("bbox", TensorElementType.Float32, "batch", 4)
            .Weights("fc.weight", [4, Features * 16], 0.002f)
            .Weights("fc.bias", [4], 0.01f)
            .Node("Flatten", ["feature_map"], ["flat"], "/Flatten", ModelBuilder.IntAttribute("axis", 1))
            .Node("Gemm", ["flat", "fc.weight", "fc.bias"], ["box"], "/fc/Gemm", ModelBuilder.IntAttribute("transB", 1))
            .Node("Sigmoid", ["box"], ["bbox"], "/Sigmoid")
            .Build();

    public static AttributeProto Ints(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.Add(values);
        return attribute;
    }

    public static AttributeProto Float(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static (float[] Data, long[] Shape) Images(int batch, int seed) =>
        (OrtRunner.Values(batch * Channels * Size * Size, seed), [batch, Channels, Size, Size]);
}
