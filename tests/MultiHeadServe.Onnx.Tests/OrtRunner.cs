using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx.Tests;

/// <summary>Runs a model on the official ONNX Runtime (CPU, one thread) and returns its float outputs.</summary>
internal static class OrtRunner
{
    public static Dictionary<string, float[]> Run(ModelProto model, IReadOnlyDictionary<string, (float[] Data, long[] Shape)> inputs) =>
        Run(model.ToByteArray(), inputs);

    public static Dictionary<string, float[]> Run(byte[] model, IReadOnlyDictionary<string, (float[] Data, long[] Shape)> inputs)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
        using var session = new InferenceSession(model, options);
        var values = inputs.Select(input => OrtValue.CreateTensorValueFromMemory(input.Value.Data, input.Value.Shape)).ToList();
        try
        {
            using var runOptions = new RunOptions();
            using var outputs = session.Run(runOptions, inputs.Keys.ToList(), values, session.OutputNames);
            return session.OutputNames.Zip(outputs)
                .ToDictionary(pair => pair.First, pair => pair.Second.GetTensorDataAsSpan<float>().ToArray(), StringComparer.Ordinal);
        }
        finally
        {
            values.ForEach(value => value.Dispose());
        }
    }

    /// <summary>Deterministic pseudo-random values in [-1, 1).</summary>
    public static float[] Values(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
    }

    /// <summary>The largest absolute difference between two equally long spans.</summary>
    public static float MaxDifference(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        var worst = 0f;
        for (var i = 0; i < expected.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]));
        }

        return worst;
    }

    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, float tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance * Math.Max(1, Math.Abs(expected[i])),
                $"{what}[{i}]: expected {expected[i]}, got {actual[i]}");
        }
    }
}
