namespace MultiHeadServe.OnnxRuntime.Tests;

/// <summary>This machine has no GPU and no CUDA provider library: the policy's fallback paths run for real.</summary>
public sealed class ExecutionProviderPolicyTests
{
    [Fact]
    public void AutoFallsBackToCpuAndSaysWhy()
    {
        using var session = InferenceSession.FromFile(TestModels.Linear, new SessionOptions { ExecutionProvider = ExecutionProvider.Auto });

        Assert.Equal("CPUExecutionProvider", session.ExecutionProvider);
        Assert.NotNull(session.ProviderFallbackReason);
        Assert.Contains("cuda", session.ProviderFallbackReason, StringComparison.OrdinalIgnoreCase);
        using var input = OrtValue.CreateTensor(new float[4], 1, 4);
        using var result = session.Run([TestModels.Named("x", input)]);
        Assert.Equal(3, result["y"].GetData<float>().Length);
    }

    [Fact]
    public void CudaFailsWithAMessageNamingTheMissingProviderLibrary()
    {
        var options = new SessionOptions { ExecutionProvider = ExecutionProvider.Cuda, CudaDeviceId = 0 };

        var error = Assert.Throws<ExecutionProviderUnavailableException>(() => InferenceSession.FromFile(TestModels.Linear, options));

        Assert.Contains("libonnxruntime_providers_cuda.so", error.Message, StringComparison.Ordinal);
        Assert.Contains("libonnxruntime_providers_shared.so", error.Message, StringComparison.Ordinal);
        Assert.Contains("ExecutionProvider=Cuda", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CpuNeverTriesCuda()
    {
        using var session = InferenceSession.FromFile(TestModels.Linear, new SessionOptions { ExecutionProvider = ExecutionProvider.Cpu });

        Assert.Equal("CPUExecutionProvider", session.ExecutionProvider);
        Assert.Null(session.ProviderFallbackReason);
    }

    [Fact]
    public void AutoDoesNotHideACorruptModelBehindTheFallback()
    {
        var error = Assert.Throws<OnnxRuntimeException>(() =>
            InferenceSession.FromBytes(new byte[] { 9, 9, 9 }, new SessionOptions { ExecutionProvider = ExecutionProvider.Auto }));

        Assert.Equal(OrtErrorCode.InvalidProtobuf, error.Code);
    }
}
