namespace MultiHeadServe.OnnxRuntime;

/// <summary>Which execution provider a session should run on.</summary>
public enum ExecutionProvider
{
    /// <summary>Try CUDA; when it is not usable, fall back to CPU and report why (<see cref="InferenceSession.ProviderFallbackReason"/>).</summary>
    Auto = 0,

    /// <summary>CPU only; CUDA is never tried.</summary>
    Cpu = 1,

    /// <summary>CUDA or nothing: creating the session fails with <see cref="ExecutionProviderUnavailableException"/> when CUDA is missing.</summary>
    Cuda = 2,
}

/// <summary>ONNX Runtime's graph optimisation levels.</summary>
public enum GraphOptimizationLevel
{
    DisableAll = 0,
    Basic = 1,
    Extended = 2,
    All = 99,
}

/// <summary>Sequential runs one node at a time (intra-op threads only); parallel also runs independent branches concurrently.</summary>
public enum ExecutionMode
{
    Sequential = 0,
    Parallel = 1,
}

/// <summary>
/// Managed description of <c>OrtSessionOptions</c>; the native object is built when a session is
/// created, so one instance can configure many sessions. Not thread-safe while being mutated.
/// </summary>
public sealed class SessionOptions
{
    public ExecutionProvider ExecutionProvider { get; set; } = ExecutionProvider.Auto;

    /// <summary>CUDA device ordinal used when the CUDA provider is tried.</summary>
    public int CudaDeviceId { get; set; }

    public GraphOptimizationLevel GraphOptimizationLevel { get; set; } = GraphOptimizationLevel.All;

    public ExecutionMode ExecutionMode { get; set; } = ExecutionMode.Sequential;

    /// <summary>Threads inside one operator; 0 lets ONNX Runtime choose (one per core).</summary>
    public int IntraOpThreads { get; set; }

    /// <summary>Threads across independent nodes (parallel mode only); 0 lets ONNX Runtime choose.</summary>
    public int InterOpThreads { get; set; }

    public bool EnableMemoryPattern { get; set; } = true;

    public bool EnableCpuMemoryArena { get; set; } = true;

    /// <summary>Extra session configuration entries (<c>AddSessionConfigEntry</c>), e.g. "session.intra_op.allow_spinning" = "0".</summary>
    public IDictionary<string, string> ConfigEntries { get; } = new Dictionary<string, string>(StringComparer.Ordinal);
}
