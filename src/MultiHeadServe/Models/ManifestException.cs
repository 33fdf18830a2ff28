namespace MultiHeadServe.Models;

/// <summary>A manifest that cannot be served: names the file, the field and the reason. Stops start-up.</summary>
public sealed class ManifestException : Exception
{
    public ManifestException(string file, string field, string reason)
        : base($"{file}: {field}: {reason}")
    {
        File = file;
        Field = field;
        Reason = reason;
    }

    public ManifestException()
    {
    }

    public ManifestException(string message)
        : base(message)
    {
    }

    public ManifestException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public string File { get; } = "";

    public string Field { get; } = "";

    public string Reason { get; } = "";
}
