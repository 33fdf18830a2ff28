using System.Text.Json;
using MultiHeadServe.Heads;
using MultiHeadServe.Models;

namespace MultiHeadServe.Tests.Heads;

/// <summary>Manifest heads and output tensors for the head tests.</summary>
internal static class TestHeads
{
    public static HeadSpec Spec(string name, string kind, string activation = "none") =>
        new() { Name = name, Output = name + "_out", Kind = Parse<HeadKind>(kind), Activation = Parse<Activation>(activation) };

    /// <summary>A manifest enum from its name, read as the manifest is.</summary>
    public static T Parse<T>(string name) => JsonSerializer.Deserialize<T>(JsonSerializer.Serialize(name), ManifestJson.Options)!;

    public static OutputTensor Tensor(string output, long[] shape, params float[] data) => new(output, data, shape);

    /// <summary>The tensor a head reads: named after the head's output.</summary>
    public static OutputTensor Output(HeadSpec head, long[] shape, params float[] data) => new(head.Output, data, shape);

    public static void Near(double expected, double actual, double tolerance = 1e-7) =>
        Assert.True(Math.Abs(expected - actual) <= tolerance, $"expected {expected:R} ± {tolerance}, got {actual:R}");

    /// <summary>Equal to 1e-6 of the expected value's magnitude (absolute near zero).</summary>
    public static void Relative(double expected, double actual, double relative = 1e-6) =>
        Assert.True(
            Math.Abs(expected - actual) <= relative * Math.Max(1e-12, Math.Abs(expected)),
            $"expected {expected:R} to {relative} relative, got {actual:R}");
}
