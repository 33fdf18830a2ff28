namespace MultiHeadServe.Heads;

/// <summary>
/// A head's manifest entry cannot be served: an unknown kind, activation, box format or loss, an option
/// that does not apply to the kind, or labels that disagree with the output. Thrown at model load, so a bad
/// manifest stops start-up; the loader reports it with the manifest file.
/// </summary>
public sealed class HeadSpecException : ArgumentException
{
    public HeadSpecException()
        : this("", "", "the head is invalid")
    {
    }

    public HeadSpecException(string message)
        : this("", "", message)
    {
    }

    public HeadSpecException(string message, Exception innerException)
        : base(message, innerException)
    {
        Head = "";
        Field = "";
    }

    /// <param name="head">The head's name.</param>
    /// <param name="field">The head's manifest field at fault, e.g. <c>boxFormat</c>.</param>
    /// <param name="reason">What is wrong and what would be valid.</param>
    public HeadSpecException(string head, string field, string reason)
        : base(field.Length == 0 ? $"head '{head}': {reason}" : $"head '{head}', field '{field}': {reason}")
    {
        Head = head;
        Field = field;
    }

    /// <summary>The head's name.</summary>
    public string Head { get; }

    /// <summary>The head's manifest field at fault, e.g. <c>activation</c>.</summary>
    public string Field { get; }
}
