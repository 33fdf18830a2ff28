namespace MultiHeadServe.Heads;

/// <summary>
/// A head's model output cannot be turned into a response: it holds NaN or Infinity, has the wrong number
/// of values per row, or a decoded value overflows. The model, not the client, is at fault, so the service
/// answers with a 5xx and logs <see cref="Head"/>; it never writes the value into the response (NaN is
/// not JSON).
/// </summary>
public sealed class HeadOutputException : Exception
{
    public HeadOutputException()
        : this("", "the model output cannot be decoded")
    {
    }

    public HeadOutputException(string message)
        : this("", message)
    {
    }

    public HeadOutputException(string message, Exception innerException)
        : base(message, innerException) => Head = "";

    /// <param name="head">The head whose output is at fault.</param>
    /// <param name="reason">What is wrong with it; the message is <c>head '&lt;head&gt;': &lt;reason&gt;</c>.</param>
    public HeadOutputException(string head, string reason)
        : base(head.Length == 0 ? reason : $"head '{head}': {reason}") => Head = head;

    /// <summary>The head whose output is at fault.</summary>
    public string Head { get; }
}
