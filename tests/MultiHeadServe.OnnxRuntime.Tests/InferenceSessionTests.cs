namespace MultiHeadServe.OnnxRuntime.Tests;

public sealed class InferenceSessionTests
{
    private static readonly SessionOptions Cpu = new() { ExecutionProvider = ExecutionProvider.Cpu };

    [Fact]
    public void LinearModelWithKnownWeightsGivesKnownOutputs()
    {
        using var session = InferenceSession.FromFile(TestModels.Linear, Cpu);
        var x = TestModels.Input(5, 4, seed: 1);
        using var input = OrtValue.CreateTensor(x, 5, 4);

        using var result = session.Run([TestModels.Named("x", input)]);

        var expected = TestModels.Affine(x, 5, 4, 3, 0.1f, 0.05f, 0.01f);
        var actual = result["y"].GetData<float>();
        Assert.Equal([5L, 3L], result["y"].Shape);
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-6 * Math.Max(1, Math.Abs(expected[i])), $"y[{i}] = {actual[i]}, expected {expected[i]}");
        }
    }

    [Fact]
    public void TwoOutputModelReturnsBothOutputsFromOneRun()
    {
        using var session = InferenceSession.FromFile(TestModels.TwoHeads, Cpu);
        var x = TestModels.Input(3, 4, seed: 2);
        using var input = OrtValue.CreateTensor(x, 3, 4);

        using var result = session.Run([TestModels.Named("x", input)]);

        Assert.Equal(["logits", "box"], result.Names);
        var logits = TestModels.Affine(x, 3, 4, 3, 0.2f, 0.1f, -0.02f);
        var box = TestModels.Affine(x, 3, 4, 4, -0.05f, 0.03f, 0.04f).Select(v => 1 / (1 + Math.Exp(-v))).ToArray();
        AssertClose(logits, result["logits"].GetData<float>());
        AssertClose(box, result["box"].GetData<float>());
    }

    [Fact]
    public void OutputSubsetReturnsOnlyTheRequestedOutputs()
    {
        using var session = InferenceSession.FromFile(TestModels.TwoHeads, Cpu);
        var x = TestModels.Input(2, 4, seed: 3);
        using var input = OrtValue.CreateTensor(x, 2, 4);

        using var result = session.Run([TestModels.Named("x", input)], ["box"]);

        Assert.Equal(1, result.Count);
        Assert.Equal([2L, 4L], result["box"].Shape);
        Assert.Throws<KeyNotFoundException>(() => result["logits"]);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(64)]
    public void DynamicBatchAxisAcceptsAnyBatchSize(int batch)
    {
        using var session = InferenceSession.FromFile(TestModels.Linear, Cpu);
        var x = TestModels.Input(batch, 4, seed: batch);
        using var input = OrtValue.CreateTensor(x, batch, 4);

        using var result = session.Run([TestModels.Named("x", input)]);

        Assert.Equal([(long)batch, 3L], result["y"].Shape);
        AssertClose(TestModels.Affine(x, batch, 4, 3, 0.1f, 0.05f, 0.01f), result["y"].GetData<float>());
    }

    [Fact]
    public void MetadataReportsNamesTypesAndSymbolicDimensions()
    {
        using var session = InferenceSession.FromFile(TestModels.TwoHeads, Cpu);

        var input = Assert.Single(session.Inputs);
        Assert.Equal("x", input.Name);
        Assert.Equal(TensorElementType.Float, input.ElementType);
        Assert.Equal([-1L, 4L], input.Shape);
        Assert.Equal(["batch", ""], input.SymbolicDimensions);
        Assert.True(input.HasDynamicBatch);
        Assert.Equal(["logits", "box"], session.Outputs.Select(o => o.Name));
        Assert.Equal([-1L, 4L], session.Outputs[1].Shape);
    }

    [Fact]
    public void SessionFromBytesMatchesSessionFromFile()
    {
        using var fromFile = InferenceSession.FromFile(TestModels.Linear, Cpu);
        using var fromBytes = InferenceSession.FromBytes(File.ReadAllBytes(TestModels.Linear), Cpu);
        var x = TestModels.Input(4, 4, seed: 9);
        using var input = OrtValue.CreateTensor(x, 4, 4);

        using var a = fromFile.Run([TestModels.Named("x", input)]);
        using var b = fromBytes.Run([TestModels.Named("x", input)]);

        Assert.Equal(a["y"].GetData<float>().ToArray(), b["y"].GetData<float>().ToArray());
    }

    [Fact]
    public void EveryMappedElementTypeRoundTrips()
    {
        using var session = InferenceSession.FromFile(TestModels.ElementTypes, Cpu);
        Half[] f16 = [(Half)1.5f, (Half)(-2f), (Half)0.25f, (Half)3f];
        long[] i64 = [1, -2, 1L << 40, 0];
        int[] i32 = [5, 6, -7, int.MaxValue - 10];
        byte[] u8 = [0, 1, 254, 100];
        bool[] flags = [true, false, false, true];
        using var vf16 = OrtValue.CreateTensor(f16, 2, 2);
        using var vi64 = OrtValue.CreateTensor(i64, 2, 2);
        using var vi32 = OrtValue.CreateTensor(i32, 2, 2);
        using var vu8 = OrtValue.CreateTensor(u8, 2, 2);
        using var vbool = OrtValue.CreateTensor(flags, 2, 2);

        using var result = session.Run(
        [
            TestModels.Named("f16_in", vf16), TestModels.Named("i64_in", vi64), TestModels.Named("i32_in", vi32),
            TestModels.Named("u8_in", vu8), TestModels.Named("bool_in", vbool),
        ]);

        Assert.Equal(f16.Select(v => (Half)((float)v * 2)), result["f16_out"].GetData<Half>().ToArray());
        Assert.Equal(i64.Select(v => v + 7), result["i64_out"].GetData<long>().ToArray());
        Assert.Equal(i32.Select(v => v - 3), result["i32_out"].GetData<int>().ToArray());
        Assert.Equal(u8.Select(v => (byte)(v + 1)), result["u8_out"].GetData<byte>().ToArray());
        Assert.Equal(flags.Select(v => !v), result["bool_out"].GetData<bool>().ToArray());
        Assert.Equal(TensorElementType.Float16, result["f16_out"].ElementType);
        Assert.Equal(TensorElementType.Bool, session.Inputs.Single(i => i.Name == "bool_in").ElementType);
    }

    [Fact]
    public void InputTensorsWrapCallerMemoryWithoutCopying()
    {
        using var session = InferenceSession.FromFile(TestModels.Linear, Cpu);
        var x = new float[4];
        using var input = OrtValue.CreateTensor(x, 1, 4);

        x[0] = 1; // written after the tensor was created: the run must see it
        using var result = session.Run([TestModels.Named("x", input)]);

        Assert.Equal(TestModels.Affine(x, 1, 4, 3, 0.1f, 0.05f, 0.01f).Select(v => (float)v), result["y"].GetData<float>().ToArray());
        Assert.Equal(x, input.GetData<float>().ToArray());
    }

    [Fact]
    public void WrongShapeRaisesAClearException()
    {
        using var session = InferenceSession.FromFile(TestModels.Linear, Cpu);
        using var input = OrtValue.CreateTensor(new float[10], 2, 5);

        var error = Assert.Throws<OnnxRuntimeException>(() => session.Run([TestModels.Named("x", input)]));

        Assert.Equal(OrtErrorCode.InvalidArgument, error.Code);
        Assert.Contains("dimensions", error.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void WrongElementTypeRaisesAClearException()
    {
        using var session = InferenceSession.FromFile(TestModels.Linear, Cpu);
        using var input = OrtValue.CreateTensor(new long[8], 2, 4);

        var error = Assert.Throws<OnnxRuntimeException>(() => session.Run([TestModels.Named("x", input)]));

        Assert.Equal(OrtErrorCode.InvalidArgument, error.Code);
        Assert.Contains("tensor(int64)", error.Message, StringComparison.Ordinal);
        Assert.Contains("tensor(float)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownInputNameRaisesAClearException()
    {
        using var session = InferenceSession.FromFile(TestModels.Linear, Cpu);
        using var input = OrtValue.CreateTensor(new float[4], 1, 4);

        var error = Assert.Throws<OnnxRuntimeException>(() => session.Run([TestModels.Named("features", input)]));

        Assert.Contains("'features'", error.Message, StringComparison.Ordinal);
        Assert.Contains("inputs are: x", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownOutputNameRaisesAClearException()
    {
        using var session = InferenceSession.FromFile(TestModels.Linear, Cpu);
        using var input = OrtValue.CreateTensor(new float[4], 1, 4);

        var error = Assert.Throws<OnnxRuntimeException>(() => session.Run([TestModels.Named("x", input)], ["z"]));

        Assert.Contains("'z'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingInputRaisesAClearException()
    {
        using var session = InferenceSession.FromFile(TestModels.ElementTypes, Cpu);
        using var input = OrtValue.CreateTensor(new long[4], 2, 2);

        var error = Assert.Throws<OnnxRuntimeException>(() => session.Run([TestModels.Named("i64_in", input)]));

        Assert.Contains("Missing Input", error.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void CorruptModelFileRaisesAClearException()
    {
        var path = System.IO.Path.GetTempFileName();
        try
        {
            var bytes = File.ReadAllBytes(TestModels.TwoHeads);
            File.WriteAllBytes(path, bytes.AsSpan(0, bytes.Length / 2).ToArray());

            var fromFile = Assert.Throws<OnnxRuntimeException>(() => InferenceSession.FromFile(path, Cpu));
            var fromBytes = Assert.Throws<OnnxRuntimeException>(() => InferenceSession.FromBytes(new byte[] { 1, 2, 3, 4, 5 }, Cpu));

            Assert.Equal(OrtErrorCode.InvalidProtobuf, fromFile.Code);
            Assert.Equal(OrtErrorCode.InvalidProtobuf, fromBytes.Code);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void MissingModelFileRaisesAClearException()
    {
        var error = Assert.Throws<OnnxRuntimeException>(() => InferenceSession.FromFile("/nonexistent/model.onnx", Cpu));

        Assert.Equal(OrtErrorCode.NoSuchFile, error.Code);
        Assert.Contains("/nonexistent/model.onnx", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BufferAndShapeDisagreeingIsRejectedBeforeReachingTheRuntime()
    {
        var error = Assert.Throws<ArgumentException>(() => OrtValue.CreateTensor(new float[5], 2, 4));

        Assert.Contains("8 elements", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadingATensorAsTheWrongTypeIsRejected()
    {
        using var value = OrtValue.CreateTensor(new float[4], 1, 4);

        Assert.Throws<InvalidOperationException>(() => value.GetData<long>());
    }

    [Fact]
    public void DisposingTwiceIsSafe()
    {
        var session = InferenceSession.FromFile(TestModels.Linear, Cpu);
        var input = OrtValue.CreateTensor(new float[4], 1, 4);
        var result = session.Run([TestModels.Named("x", input)]);
        var runOptions = new OrtRunOptions();

        result.Dispose();
        result.Dispose();
        input.Dispose();
        input.Dispose();
        session.Dispose();
        session.Dispose();
        runOptions.Dispose();
        runOptions.Dispose();

        Assert.Throws<ObjectDisposedException>(() => input.GetData<float>());
    }

    [Fact]
    public void EveryOptionIsAcceptedByTheRuntime()
    {
        foreach (var level in Enum.GetValues<GraphOptimizationLevel>())
        {
            var options = new SessionOptions
            {
                ExecutionProvider = ExecutionProvider.Cpu,
                GraphOptimizationLevel = level,
                ExecutionMode = level == GraphOptimizationLevel.Basic ? ExecutionMode.Parallel : ExecutionMode.Sequential,
                IntraOpThreads = 1,
                InterOpThreads = 1,
                EnableMemoryPattern = level != GraphOptimizationLevel.Basic,
                EnableCpuMemoryArena = level != GraphOptimizationLevel.Extended,
                ConfigEntries = { ["session.intra_op.allow_spinning"] = "0" },
            };
            using var session = InferenceSession.FromFile(TestModels.Linear, options);
            var x = TestModels.Input(2, 4, seed: 5);
            using var input = OrtValue.CreateTensor(x, 2, 4);
            using var result = session.Run([TestModels.Named("x", input)]);
            AssertClose(TestModels.Affine(x, 2, 4, 3, 0.1f, 0.05f, 0.01f), result["y"].GetData<float>());
        }
    }

    [Fact]
    public void InvalidOptionValuesAreReportedByTheRuntime()
    {
        var options = new SessionOptions { ExecutionProvider = ExecutionProvider.Cpu, GraphOptimizationLevel = (GraphOptimizationLevel)5 };

        var error = Assert.Throws<OnnxRuntimeException>(() => InferenceSession.FromFile(TestModels.Linear, options));

        Assert.Contains("graph_optimization_level is not valid", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AvailableProvidersIncludeTheCpuProvider()
    {
        Assert.Contains("CPUExecutionProvider", OrtEnvironment.AvailableProviders());
        Assert.Matches(@"^\d+\.\d+\.\d+", OrtEnvironment.RuntimeVersion);
    }

    internal static void AssertClose(IReadOnlyList<double> expected, ReadOnlySpan<float> actual, double tolerance = 1e-6)
    {
        Assert.Equal(expected.Count, actual.Length);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.True(
                Math.Abs(expected[i] - actual[i]) <= tolerance * Math.Max(1, Math.Abs(expected[i])),
                $"[{i}] = {actual[i]}, expected {expected[i]}");
        }
    }
}
