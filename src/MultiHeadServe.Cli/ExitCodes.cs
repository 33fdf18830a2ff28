namespace MultiHeadServe.Cli;

/// <summary>The process exit codes of <c>mhs</c>.</summary>
internal static class ExitCodes
{
    public const int Success = 0;

    /// <summary>The command was understood but could not be carried out (bad model, unreadable file, ...).</summary>
    public const int Failure = 1;

    /// <summary>The command line itself is wrong: unknown command, missing argument, malformed option.</summary>
    public const int Usage = 2;
}
