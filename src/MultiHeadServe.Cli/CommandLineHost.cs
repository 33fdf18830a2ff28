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

    /// <summary>The help of the command that was meant, subcommands included: <c>mhs models list --help</c>.</summary>
    private static string HelpCommandLine(ParseResult parsed)
    {
        var names = new List<string>();
        for (var result = parsed.CommandResult; result.Command is not RootCommand; result = (System.CommandLine.Parsing.CommandResult)result.Parent!)
        {
            names.Insert(0, result.Command.Name);
        }

        return names.Count == 0 ? "mhs --help" : $"mhs {string.Join(' ', names)} --help";
    }
}
