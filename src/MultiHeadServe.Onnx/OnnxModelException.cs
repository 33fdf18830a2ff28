namespace MultiHeadServe.Onnx;

/// <summary>
/// A model could not be read, or a graph operation (fusion, pruning) cannot be applied to it. The message
/// names the file, member, input or output at fault and says what to change.
/// </summary>
public sealed class OnnxModelException : Exception
{
    /// <summary>Creates an exception with a default message.</summary>
    public OnnxModelException()
    {
    }

    /// <summary>Creates an exception with the given message.</summary>
    public OnnxModelException(string message)
        : base(message)
    {
    }

    /// <summary>Creates an exception with the given message and the error that caused it.</summary>
    public OnnxModelException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
