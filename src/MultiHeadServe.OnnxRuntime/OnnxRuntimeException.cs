namespace MultiHeadServe.OnnxRuntime;

/// <summary>ONNX Runtime's error codes (<c>OrtErrorCode</c>).</summary>
public enum OrtErrorCode
{
    Ok = 0,
    Fail = 1,
    InvalidArgument = 2,
    NoSuchFile = 3,
    NoModel = 4,
    EngineError = 5,
    RuntimeException = 6,
    InvalidProtobuf = 7,
    ModelLoaded = 8,
    NotImplemented = 9,
    InvalidGraph = 10,
    ExecutionProviderFailure = 11,
}

/// <summary>An error ONNX Runtime reported, with its code and message.</summary>
public class OnnxRuntimeException : Exception
{
    public OnnxRuntimeException(OrtErrorCode code, string message)
        : base($"[ONNXRuntimeError] {code}: {message}")
    {
        Code = code;
        RuntimeMessage = message;
    }

    public OnnxRuntimeException()
    {
    }

    public OnnxRuntimeException(string message)
        : base(message)
    {
    }

    public OnnxRuntimeException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>ONNX Runtime's error code.</summary>
    public OrtErrorCode Code { get; } = OrtErrorCode.Fail;

    /// <summary>ONNX Runtime's own message, without the code prefix.</summary>
    public string RuntimeMessage { get; } = "";
}

/// <summary>The native library could not be loaded or does not serve the API version this binding needs.</summary>
public sealed class OnnxRuntimeLoadException : Exception
{
    public OnnxRuntimeLoadException()
    {
    }

    public OnnxRuntimeLoadException(string message)
        : base(message)
    {
    }

    public OnnxRuntimeLoadException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The requested execution provider (e.g. CUDA) is not usable on this host.</summary>
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
