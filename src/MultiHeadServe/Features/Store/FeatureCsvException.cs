namespace MultiHeadServe.Features.Store;

/// <summary>A feature CSV file that cannot be seeded; the message starts with <c>file:line:</c>.</summary>
public sealed class FeatureCsvException : FormatException
{
    public FeatureCsvException()
    {
    }

    public FeatureCsvException(string message)
        : base(message)
    {
    }

    public FeatureCsvException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <param name="filePath">The CSV file.</param>
    /// <param name="line">The 1-based line at fault.</param>
    /// <param name="reason">What is wrong with it.</param>
    public FeatureCsvException(string filePath, int line, string reason)
        : base($"{filePath}:{line}: {reason}")
    {
        FilePath = filePath;
        Line = line;
    }

    /// <summary>The CSV file, when known.</summary>
    public string? FilePath { get; }

    /// <summary>The 1-based line at fault, when known.</summary>
    public int? Line { get; }
}
