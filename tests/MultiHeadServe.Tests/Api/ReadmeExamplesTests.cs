using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Api;

/// <summary>
/// The README's examples run as written: every bash block with a curl command is run by bash, from the repository
/// root, against the service on a real port (the only change: its address for localhost:8080). Each call must
/// answer JSON, and what the README shows after it (a JSON block, or "# ..." lines) must hold: its kinds, labels,
/// problem titles, statuses and fields appear in the real answer.
/// </summary>
public sealed partial class ReadmeExamplesTests
{
    private const string End = "<<<end of answer>>>";

    [Fact]
    public async Task EveryCurlExampleInTheReadmeRunsAsWritten()
    {
        var readme = await File.ReadAllTextAsync(Path.Combine(RepositoryPaths.Root, "README.md"));
        var blocks = CodeBlock().Matches(readme).Select(m => (Language: m.Groups[1].Value, Text: m.Groups[2].Value)).ToList();
        await using var app = new ServeFactory();
        app.UseKestrel(0);
        app.StartServer();
        var address = $"{app.ClientOptions.BaseAddress.Host}:{app.ClientOptions.BaseAddress.Port}";

        var checkedCalls = 0;
        var checkedTokens = 0;
        for (var b = 0; b < blocks.Count; b++)
        {
            var (language, text) = blocks[b];
            if (language != "bash" || !Regex.IsMatch(text, @"(?m)^curl ") || !text.Contains("localhost:8080", StringComparison.Ordinal))
            {
                continue;
            }

            // Each curl's answer is followed by a marker, so the answers can be told apart.
            var script = $"set -euo pipefail\ncurl() {{ command curl --max-time 30 \"$@\"; printf '\\n%s\\n' '{End}'; }}\n" +
                text.Replace("localhost:8080", address, StringComparison.Ordinal);
            var (exit, output, error) = await RunBashAsync(script);
            Assert.True(exit == 0, $"The README block\n{text}\nexited {exit}: {error}");
            var answers = output.Split(End).Select(a => a.Trim()).Where(a => a.Length > 0).ToList();
            var calls = Regex.Count(text, @"(?m)^curl ");
            Assert.Equal(calls, answers.Count);

            var shown = CommentGroups(text);
            if (shown.Count != calls && calls == 1 && b + 1 < blocks.Count && blocks[b + 1].Language == "json")
            {
                shown = [blocks[b + 1].Text];
            }

            for (var i = 0; i < calls; i++)
            {
                using var _ = JsonDocument.Parse(answers[i]);
                var expected = i < shown.Count ? shown[i] : "";
                foreach (var token in ShownToken().Matches(expected).Select(m => m.Value))
                {
                    Assert.True(answers[i].Contains(token, StringComparison.Ordinal), $"The README shows {token} for call {i + 1} of\n{text}\nbut the service answered\n{answers[i]}");
                    checkedTokens++;
                }

                if (!expected.Contains("\"status\":4", StringComparison.Ordinal))
                {
                    Assert.DoesNotContain("\"status\":4", answers[i], StringComparison.Ordinal);
                    Assert.DoesNotContain("\"status\":5", answers[i], StringComparison.Ordinal);
                }

                checkedCalls++;
            }
        }

        Assert.True(checkedCalls >= 8, $"Only {checkedCalls} curl examples were found in the README.");
        Assert.True(checkedTokens >= 20, $"Only {checkedTokens} shown values were compared.");
    }

    /// <summary>The "# ..." lines of a block, consecutive lines joined: what the README says each command prints.</summary>
    private static List<string> CommentGroups(string text)
    {
        var groups = new List<string>();
        var previousWasComment = false;
        foreach (var line in text.Split('\n'))
        {
            var comment = line.StartsWith("# ", StringComparison.Ordinal);
            if (comment && previousWasComment)
            {
                groups[^1] += line[2..];
            }
            else if (comment)
            {
                groups.Add(line[2..]);
            }

            previousWasComment = comment;
        }

        return groups;
    }

    private static async Task<(int Exit, string Output, string Error)> RunBashAsync(string script)
    {
        var start = new ProcessStartInfo("bash")
        {
            WorkingDirectory = RepositoryPaths.Root,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(start)!;
        await process.StandardInput.WriteAsync(script);
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await output, await error);
    }

    [GeneratedRegex(@"```(\w*)\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex CodeBlock();

    [GeneratedRegex("\"(kind|label|title|field|model|head)\":\"[^\"]*\"|\"status\":\\d+")]
    private static partial Regex ShownToken();
}
