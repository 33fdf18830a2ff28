namespace MultiHeadServe.Inference.Engine;

/// <summary>Which execution provider a session should run on.</summary>
public enum ExecutionProvider
{
    /// <summary>Try CUDA; when it is not usable, fall back to CPU and report why (<see cref="ModelSession.ProviderFallbackReason"/>).</summary>
    Auto = 0,

    /// <summary>CPU only; CUDA is never tried.</summary>
    Cpu = 1,

    /// <summary>CUDA or nothing: creating the session fails with <see cref="ExecutionProviderUnavailableException"/> when CUDA is not usable.</summary>
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

/// <summary>The least severe ONNX Runtime message the service's log receives (category <c>OnnxRuntime</c>).</summary>
public enum RuntimeLogLevel
{
    Verbose = 0,
    Info = 1,
    Warning = 2,
    Error = 3,
    Fatal = 4,
}

/// <summary>How one session is created. Immutable; one instance may configure many sessions.</summary>
public sealed record SessionSettings
{
    public ExecutionProvider Provider { get; init; } = ExecutionProvider.Auto;

    /// <summary>CUDA device ordinal used when the CUDA provider is tried.</summary>
    public int CudaDeviceId { get; init; }

    /// <summary>Threads inside one operator; 0 lets ONNX Runtime choose (one per core).</summary>
    public int IntraOpThreads { get; init; }

    public GraphOptimizationLevel GraphOptimizationLevel { get; init; } = GraphOptimizationLevel.All;

    /// <summary>
    /// Whether idle intra-op threads spin waiting for work. Off by default: spinning threads burn the cores
    /// the HTTP server and the other sessions need.
    /// </summary>
    public bool AllowSpinning { get; init; }

    /// <summary>
    /// Whether CPU tensors come from the process's one shared arena (on by default) instead of an arena per session.
    /// A session's own arena is freed with it, but the C allocator keeps much of it, so loading and unloading
    /// versions grows resident memory; the shared arena is reused by the next version instead.
    /// </summary>
    public bool SharedCpuArena { get; init; } = true;
}

/// <summary>The CUDA execution provider was required (<see cref="ExecutionProvider.Cuda"/>) but is not usable here.</summary>
public sealed class ExecutionProviderUnavailableException : Exception
{
    public ExecutionProviderUnavailableException()
    {
    }

    public ExecutionProviderUnavailableException(string message)
        : base(message)
    {
    }

    public ExecutionProviderUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The engine could not load a model, or a run failed; the message is the engine's own words.</summary>
public sealed class InferenceEngineException : Exception
{
    public InferenceEngineException()
    {
    }

    public InferenceEngineException(string message)
        : base(message)
    {
    }

    public InferenceEngineException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
