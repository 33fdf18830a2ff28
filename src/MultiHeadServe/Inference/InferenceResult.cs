using MultiHeadServe.Heads;

namespace MultiHeadServe.Inference;

/// <summary>One request's share of a session run: its own rows of every output it asked for.</summary>
/// <param name="Outputs">Per ONNX output name, this request's rows only.</param>
/// <param name="QueueMilliseconds">Time spent waiting in the batcher's queue.</param>
/// <param name="RunMilliseconds">Duration of the session run that served it.</param>
/// <param name="BatchRows">Rows in that run (this request's and the others batched with it).</param>
public sealed record InferenceResult(
    IReadOnlyDictionary<string, OutputTensor> Outputs,
    double QueueMilliseconds,
    double RunMilliseconds,
    int BatchRows);

/// <summary>The model's queue is full: the client should retry later (429 with Retry-After).</summary>
public sealed class QueueFullException : Exception
{
    public QueueFullException()
    {
    }

    public QueueFullException(string message)
        : base(message)
    {
    }

    public QueueFullException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
