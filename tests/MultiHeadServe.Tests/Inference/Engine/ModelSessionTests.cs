using MultiHeadServe.Inference.Engine;
using MultiHeadServe.Onnx;

namespace MultiHeadServe.Tests.Inference.Engine;

/// <summary>The service's one engine type over the official ONNX Runtime API: outputs, metadata, errors.</summary>
public sealed class ModelSessionTests
{
    private static readonly SessionSettings Cpu = new() { Provider = ExecutionProvider.Cpu };

    [Fact]
    public void LinearModelWithKnownWeightsGivesKnownOutputs()
    {
        using var session = ModelSession.FromFile(TestModels.Linear, Cpu);
        var x = TestModels.Input(5, 4, seed: 1);

        var result = session.Run("x", x, [5, 4], ["y"], CancellationToken.None);

        Assert.Equal([5L, 3L], result.Shapes[0]);
        AssertClose(TestModels.Affine(x, 5, 4, 3, 0.1f, 0.05f, 0.01f), result.Data[0]);
    }

    [Fact]
    public void BothOutputsComeFromOneRunInTheOrderAskedFor()
    {
        using var session = ModelSession.FromFile(TestModels.TwoHeads, Cpu);
        var x = TestModels.Input(3, 4, seed: 2);

        var result = session.Run("x", x, [3, 4], ["box", "logits"], CancellationToken.None);

        var logits = TestModels.Affine(x, 3, 4, 3, 0.2f, 0.1f, -0.02f);
        var box = TestModels.Affine(x, 3, 4, 4, -0.05f, 0.03f, 0.04f).Select(v => 1 / (1 + Math.Exp(-v))).ToArray();
        AssertClose(box, result.Data[0]);
        AssertClose(logits, result.Data[1]);
        Assert.Equal([3L, 4L], result.Shapes[0]);
        Assert.Equal([3L, 3L], result.Shapes[1]);
    }

    [Fact]
    public void AnOutputSubsetReturnsOnlyThoseOutputs()
    {
        using var session = ModelSession.FromFile(TestModels.TwoHeads, Cpu);

        var result = session.Run("x", TestModels.Input(2, 4, seed: 3), [2, 4], ["box"], CancellationToken.None);

        Assert.Single(result.Data);
        Assert.Equal([2L, 4L], result.Shapes[0]);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(64)]
    public void TheDynamicBatchAxisTakesAnyBatchSize(int batch)
    {
        using var session = ModelSession.FromFile(TestModels.Linear, Cpu);
        var x = TestModels.Input(batch, 4, seed: batch);

        var result = session.Run("x", x, [batch, 4], ["y"], CancellationToken.None);

        Assert.Equal(batch * 3, result.Data[0].Length);
        AssertClose(TestModels.Affine(x, batch, 4, 3, 0.1f, 0.05f, 0.01f), result.Data[0]);
    }

    [Fact]
    public void EveryRunWritesIntoArraysOfItsOwn()
    {
        using var session = ModelSession.FromFile(TestModels.Linear, Cpu);
        var first = session.Run("x", TestModels.Input(1, 4, seed: 4), [1, 4], ["y"], CancellationToken.None);
        var copy = first.Data[0].ToArray();

        var second = session.Run("x", TestModels.Input(1, 4, seed: 5), [1, 4], ["y"], CancellationToken.None);

        Assert.NotSame(first.Data[0], second.Data[0]);
        Assert.Equal(copy, first.Data[0]);
    }

    [Fact]
    public void MetadataReportsNamesElementTypesAndSymbolicDimensions()
    {
        using var linear = ModelSession.FromFile(TestModels.Linear, Cpu);
        using var types = ModelSession.FromFile(TestModels.ElementTypes, Cpu);

        var x = Assert.Single(linear.Inputs);
        Assert.Equal("x", x.Name);
        Assert.Equal(TensorElementType.Float32, x.ElementType);
        Assert.Equal([-1L, 4L], x.Shape);
        Assert.True(x.HasDynamicBatch);
        Assert.Equal("batch", x.SymbolicDimensions[0]);
        Assert.Equal("y", Assert.Single(linear.Outputs).Name);
        Assert.Equal(0, linear.OutputIndex("y"));
        Assert.Equal(-1, linear.OutputIndex("z"));
        Assert.Equal(TensorElementType.Float16, types.Inputs.Single(i => i.Name == "f16_in").ElementType);
        Assert.Equal(TensorElementType.Int64, types.Inputs.Single(i => i.Name == "i64_in").ElementType);
        Assert.Equal(TensorElementType.Bool, types.Outputs.Single(o => o.Name == "bool_out").ElementType);
    }

    [Fact]
    public void ASessionFromBytesMatchesOneFromTheFile()
    {
        using var fromFile = ModelSession.FromFile(TestModels.Linear, Cpu);
        using var fromBytes = ModelSession.FromBytes(File.ReadAllBytes(TestModels.Linear), Cpu);
        var x = TestModels.Input(3, 4, seed: 6);

        Assert.Equal(fromFile.Run("x", x, [3, 4], ["y"], CancellationToken.None).Data[0], fromBytes.Run("x", x, [3, 4], ["y"], CancellationToken.None).Data[0]);
    }

    [Fact]
    public void AWrongShapeIsAnEngineErrorNamingTheDimensions()
    {
        using var session = ModelSession.FromFile(TestModels.Linear, Cpu);

        var error = Assert.Throws<InferenceEngineException>(() => session.Run("x", new float[10], [2, 5], ["y"], CancellationToken.None));

        Assert.Contains("dimensions", error.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void AnUnknownOutputIsRejectedWithTheModelsOutputs()
    {
        using var session = ModelSession.FromFile(TestModels.Linear, Cpu);

        var error = Assert.Throws<ArgumentException>(() => session.Run("x", new float[4], [1, 4], ["z"], CancellationToken.None));

        Assert.Contains("'z'", error.Message, StringComparison.Ordinal);
        Assert.Contains("outputs: y", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnOutputThatIsNotFloat32ComesBackAsTheRuntimeWroteIt()
    {
        using var repository = Infrastructure.TensorTypesModel.Create();
        using var session = ModelSession.FromFile(Path.Combine(repository.Path, Infrastructure.TensorTypesModel.Name, "1", "model.onnx"), Cpu);
        float[] rows = [.. Infrastructure.TensorTypesModel.Rows.SelectMany(r => r)];

        var result = session.Run("features", rows, [3, 4], ["class_index", "positive", "logits"], CancellationToken.None);

        Assert.Equal([TensorElementType.Int64, TensorElementType.Bool, TensorElementType.Float32], result.ElementTypes);
        Assert.Empty(result.Data[0]);
        Assert.Null(result.RawData![2]);
        var indices = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(result.RawData[0]).ToArray();
        var logits = result.Data[2];
        for (var r = 0; r < 3; r++)
        {
            var row = logits.AsSpan(r * 3, 3).ToArray();
            Assert.Equal(Infrastructure.TensorTypesModel.IndexOffset + Array.IndexOf(row, row.Max()), indices[r]);
            Assert.Equal(row.Select(v => (byte)(v > 0 ? 1 : 0)), result.RawData[1]!.AsSpan(r * 3, 3).ToArray());
        }
    }

    [Fact]
    public void ACorruptOrMissingModelIsAnEngineErrorWithOrWithoutTheCudaProbe()
    {
        var path = Path.GetTempFileName();
        try
        {
            var bytes = File.ReadAllBytes(TestModels.TwoHeads);
            File.WriteAllBytes(path, bytes.AsSpan(0, bytes.Length / 2).ToArray());
            // Under Cuda a host that cannot run CUDA reports that first, whatever the file.
            foreach (var provider in new[] { ExecutionProvider.Auto, ExecutionProvider.Cpu })
            {
                var settings = new SessionSettings { Provider = provider };
                Assert.Throws<InferenceEngineException>(() => ModelSession.FromFile(path, settings));
                Assert.Throws<InferenceEngineException>(() => ModelSession.FromBytes([1, 2, 3, 4, 5], settings));
                var missing = Assert.Throws<InferenceEngineException>(() => ModelSession.FromFile("/nonexistent/model.onnx", settings));
                Assert.Contains("/nonexistent/model.onnx", missing.Message, StringComparison.Ordinal);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void EveryOptimisationLevelAndThreadCountIsAccepted()
    {
        foreach (var level in Enum.GetValues<GraphOptimizationLevel>())
        {
            using var session = ModelSession.FromFile(TestModels.Linear, Cpu with { GraphOptimizationLevel = level, IntraOpThreads = 1, AllowSpinning = true });
            Assert.Equal(3, session.Run("x", new float[4], [1, 4], ["y"], CancellationToken.None).Data[0].Length);
        }
    }

    [Fact]
    public void DisposingTwiceIsSafeAndARunAfterwardsIsRefused()
    {
        var session = ModelSession.FromFile(TestModels.Linear, Cpu);

        session.Dispose();
        session.Dispose();

        Assert.Throws<ObjectDisposedException>(() => session.Run("x", new float[4], [1, 4], ["y"], CancellationToken.None));
    }

    internal static void AssertClose(IReadOnlyList<double> expected, IReadOnlyList<float> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5 * Math.Max(1, Math.Abs(expected[i])), $"[{i}] = {actual[i]}, expected {expected[i]}");
        }
    }
}
