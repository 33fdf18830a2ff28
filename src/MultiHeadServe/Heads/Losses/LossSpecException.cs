namespace MultiHeadServe.Heads.Losses;

/// <summary>
/// The manifest's <c>loss</c> section cannot combine the model's heads: an unknown combination, a missing
/// or non-finite weight or log-variance, a head that does not exist. Thrown at model load, so a bad
/// manifest stops start-up with the field at fault.
/// </summary>
public sealed class LossSpecException : ArgumentException
{
    public LossSpecException()
        : this("loss", "the loss section is invalid")
    {
    }

    public LossSpecException(string message)
        : this("loss", message)
    {
    }

    public LossSpecException(string message, Exception innerException)
        : base(message, innerException) => Field = "loss";

    /// <param name="field">The manifest field at fault, e.g. <c>loss.logVariances.bbox</c>.</param>
    /// <param name="reason">What is wrong and what would be valid.</param>
    public LossSpecException(string field, string reason)
        : base($"field '{field}': {reason}") => Field = field;

    /// <summary>The manifest field at fault, e.g. <c>loss.weights.class</c>.</summary>
    public string Field { get; }
}
