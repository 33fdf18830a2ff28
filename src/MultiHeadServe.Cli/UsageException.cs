namespace MultiHeadServe.Cli;

/// <summary>Arguments that parse but do not make sense together; reported like a parse error (exit code 2).</summary>
internal sealed class UsageException(string message) : Exception(message);
