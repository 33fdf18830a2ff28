namespace MultiHeadServe.Heads.Losses;

/// <summary>
/// An evaluation request the service cannot score: bad labels, an unknown head, an invalid combination.
/// The client is at fault: the service answers with a 400 problem+json naming <see cref="Field"/>.
/// </summary>
public class EvaluationRequestException : Exception
{
    public EvaluationRequestException()
        : this("", "the evaluation request is invalid")
    {
    }

    public EvaluationRequestException(string message)
        : this("", message)
    {
    }

    public EvaluationRequestException(string message, Exception innerException)
        : base(message, innerException) => Field = "";

    /// <param name="field">The request field at fault, e.g. <c>alpha</c> or <c>labels.bbox</c>.</param>
    /// <param name="message">What is wrong, phrased for the client.</param>
    public EvaluationRequestException(string field, string message)
        : base(message) => Field = field;

    /// <summary>The request field at fault, as a dotted path: <c>labels.bbox</c>, <c>weights.class</c>, <c>alpha</c>, <c>heads</c>.</summary>
    public string Field { get; }
}

/// <summary>
/// A head's labels cannot be scored against its output: missing, of the wrong type, a row count or row
/// width that differs from the output's, NaN or Infinity, an unknown class. <see cref="EvaluationRequestException.Field"/>
/// is <c>labels.&lt;head&gt;</c> and the message names the head and what was expected.
/// </summary>
public sealed class LabelException : EvaluationRequestException
{
    public LabelException()
    {
        Head = "";
    }

    public LabelException(string message)
        : base(message) => Head = "";

    public LabelException(string message, Exception innerException)
        : base(message, innerException) => Head = "";

    /// <param name="head">The head whose labels are at fault.</param>
    /// <param name="message">What is wrong, naming the head.</param>
    public LabelException(string head, string message)
        : base($"labels.{head}", message) => Head = head;

    /// <summary>The head whose labels are at fault.</summary>
    public string Head { get; }
}
