using MultiHeadServe.Inference.Engine;

namespace MultiHeadServe.Tests.Inference.Engine;

/// <summary>
/// The provider policy, true on any host: where CUDA cannot run (no GPU, the CPU package, missing CUDA libraries)
/// the fallback paths run for real; where it can, the same tests see a CUDA session.
/// </summary>
public sealed class ExecutionProviderPolicyTests
{
    [Fact]
    public void AutoRunsOnCudaOrFallsBackToCpuSayingWhy()
    {
        using var session = ModelSession.FromFile(TestModels.Linear, new SessionSettings { Provider = ExecutionProvider.Auto });

        if (session.ExecutionProvider == "CUDAExecutionProvider")
        {
            Assert.Null(session.ProviderFallbackReason);
        }
        else
        {
            Assert.Equal("CPUExecutionProvider", session.ExecutionProvider);
            Assert.Contains("cuda", session.ProviderFallbackReason, StringComparison.OrdinalIgnoreCase);
            Assert.Equal(CudaDevice.UnavailableReason, $"The CUDA execution provider is required (ExecutionProvider=Cuda) but is not usable on this host: {session.ProviderFallbackReason}");
        }

        Assert.Equal(3, session.Run("x", new float[4], [1, 4], ["y"], CancellationToken.None).Data[0].Length);
    }

    [Fact]
    public void CudaRunsOnCudaOrRefusesWithTheReason()
    {
        try
        {
            using var session = ModelSession.FromFile(TestModels.Linear, new SessionSettings { Provider = ExecutionProvider.Cuda });
            Assert.Equal("CUDAExecutionProvider", session.ExecutionProvider);
        }
        catch (ExecutionProviderUnavailableException error)
        {
            Assert.Contains("ExecutionProvider=Cuda", error.Message, StringComparison.Ordinal);
            Assert.NotNull(CudaDevice.UnavailableReason);
        }
    }

    [Fact]
    public void CpuNeverTriesCuda()
    {
        using var session = ModelSession.FromFile(TestModels.Linear, new SessionSettings { Provider = ExecutionProvider.Cpu });

        Assert.Equal("CPUExecutionProvider", session.ExecutionProvider);
        Assert.Null(session.ProviderFallbackReason);
    }

    [Fact]
    public void AMissingCudaLibraryIsNamedInTheReason()
    {
        // What ONNX Runtime's CUDA package logs on a host without the CUDA 13 libraries.
        string[] captured =
        [
            "/onnxruntime_src/onnxruntime/core/session/provider_bridge_ort.cc:2043 onnxruntime::Provider& onnxruntime::ProviderLibrary::Get() " +
            "[ONNXRuntimeError] : 1 : FAIL : Failed to load library /app/libonnxruntime_providers_cuda.so with error: libcublasLt.so.13: " +
            "cannot open shared object file: No such file or directory",
        ];

        var reason = RuntimeEnvironment.DescribeCudaFailure("[ErrorCode:Fail] OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library", captured);

        Assert.StartsWith("libonnxruntime_providers_cuda.so cannot be loaded because libcublasLt.so.13 is missing", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void AnUnrecognisedFailureKeepsTheRuntimesOwnWords()
    {
        var reason = RuntimeEnvironment.DescribeCudaFailure("[ErrorCode:Fail] no CUDA-capable device is detected", ["CUDA failure 100"]);

        Assert.Contains("no CUDA-capable device is detected", reason, StringComparison.Ordinal);
        Assert.Contains("CUDA failure 100", reason, StringComparison.Ordinal);
    }
}
