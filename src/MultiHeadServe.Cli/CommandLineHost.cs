using System.CommandLine;
using MultiHeadServe.Onnx;

namespace MultiHeadServe.Cli;

/// <summary>Parses and runs a command line, turning every outcome into a message and an exit code.</summary>
internal static class CommandLineHost
{
    public static int Run(RootCommand root, IReadOnlyList<string> args, TextWriter output, TextWriter error)
    {
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var parseError in parsed.Errors)
            {
                error.WriteLine($"mhs: {parseError.Message}");
            }

            error.WriteLine($"Run '{HelpCommandLine(parsed)}' for usage.");
            return ExitCodes.Usage;
        }

        try
        {
            // Exceptions come back here rather than to the library's handler, which prints a stack trace.
            return parsed.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (UsageException exception)
        {
            error.WriteLine($"mhs: {exception.Message}");
            error.WriteLine($"Run '{HelpCommandLine(parsed)}' for usage.");
            return ExitCodes.Usage;
        }
        catch (Exception exception) when (exception is OnnxModelException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            error.WriteLine($"mhs: {exception.Message}");
            return ExitCodes.Failure;
        }
    }

    /// <summary>Splits comma-separated values, allowing the option to be repeated too: <c>--keep a,b --keep c</c>.</summary>
    public static List<string> SplitList(IEnumerable<string>? values) =>
        (values ?? []).SelectMany(value => value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)).ToList();

    private static string HelpCommandLine(ParseResult parsed)
    {
        var command = parsed.CommandResult.Command;
        return command is RootCommand ? "mhs --help" : $"mhs {command.Name} --help";
    }
}
