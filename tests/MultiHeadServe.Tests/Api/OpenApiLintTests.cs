using System.Diagnostics;
using System.Text.Json;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Api;

/// <summary>
/// The served document passes a third-party linter, Redocly CLI (its recommended rules), with no errors, with and
/// without API keys. Node is not needed to build or test the project: without npx (or without a reachable npm
/// registry) this test is skipped and says so. By hand: <c>npx @redocly/cli@2.77.0 lint swagger.json</c>.
/// </summary>
[TakesAbout(seconds: 4)]
public sealed class OpenApiLintTests
{
    private const string Redocly = "@redocly/cli@2.77.0";

    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task RedoclyFindsNoErrorsInTheDocument(bool withApiKeys)
    {
        var npx = FindOnPath("npx");
        Skip.If(npx is null, "npx (Node.js) is not installed: the Redocly lint check runs where it is.");

        var settings = withApiKeys ? new Dictionary<string, string?> { ["Security:ApiKeys:0"] = "lint-key" } : null;
        await using var app = new ServeFactory(settings);
        using var client = app.CreateClient();
        var document = await client.GetStringAsync("/swagger/v1/swagger.json");
        var path = TestArtifacts.PathOf(withApiKeys ? "openapi-with-keys.json" : "openapi.json");
        await File.WriteAllTextAsync(path, document);

        var (exit, output, error) = await RunAsync(npx!, $"--yes {Redocly} lint --format=json {path}");
        Skip.If(exit != 0 && (error.Contains("ENOTFOUND", StringComparison.Ordinal) || error.Contains("EAI_AGAIN", StringComparison.Ordinal) || error.Contains("ECONNREFUSED", StringComparison.Ordinal)),
            "The npm registry is not reachable: " + error.Split('\n').FirstOrDefault());
        await File.WriteAllTextAsync(Path.ChangeExtension(path, ".lint.json"), output);
        var start = output.IndexOf('{', StringComparison.Ordinal);
        Assert.True(start >= 0, $"Redocly printed no report (exit {exit}): {error}");
        using var report = JsonDocument.Parse(output[start..]);
        var totals = report.RootElement.GetProperty("totals");
        var problems = report.RootElement.GetProperty("problems").EnumerateArray()
            .Select(p => $"{p.GetProperty("severity").GetString()} {p.GetProperty("ruleId").GetString()}: {p.GetProperty("message").GetString()}").ToList();
        Assert.True(totals.GetProperty("errors").GetInt32() == 0, "Redocly errors:\n" + string.Join("\n", problems.Where(p => p.StartsWith("error", StringComparison.Ordinal))));
        // Warnings left, by rule (operation-4xx-response on routes that have no 4xx, info-license): listed in the artifact.
        Assert.True(totals.GetProperty("warnings").GetInt32() <= 11, "More Redocly warnings than before:\n" + string.Join("\n", problems));
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    private static async Task<(int Exit, string Output, string Error)> RunAsync(string file, string arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(file, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        })!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await output, await error);
    }
}
