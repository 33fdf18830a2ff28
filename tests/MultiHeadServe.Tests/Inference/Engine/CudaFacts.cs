using MultiHeadServe.Inference.Engine;

namespace MultiHeadServe.Tests.Inference.Engine;

/// <summary>Whether this host can run the CUDA execution provider, probed once with a real session.</summary>
internal static class CudaDevice
{
    private static readonly Lazy<string?> Unavailable = new(() =>
    {
        try
        {
            using var session = ModelSession.FromFile(TestModels.Linear, new SessionSettings { Provider = ExecutionProvider.Cuda });
            return null;
        }
        catch (ExecutionProviderUnavailableException ex)
        {
            return ex.Message;
        }
    });

    /// <summary>Why CUDA cannot run here, or null where it can.</summary>
    public static string? UnavailableReason => Unavailable.Value;
}

/// <summary>A test that needs a CUDA device: skipped, with the reason, on a host without one.</summary>
public sealed class CudaFactAttribute : FactAttribute
{
    public CudaFactAttribute()
    {
        if (CudaDevice.UnavailableReason is { } reason)
        {
            Skip = "No usable CUDA device: " + reason;
        }
    }
}

/// <summary>A theory that needs a CUDA device: skipped, with the reason, on a host without one.</summary>
public sealed class CudaTheoryAttribute : TheoryAttribute
{
    public CudaTheoryAttribute()
    {
        if (CudaDevice.UnavailableReason is { } reason)
        {
            Skip = "No usable CUDA device: " + reason;
        }
    }
}
