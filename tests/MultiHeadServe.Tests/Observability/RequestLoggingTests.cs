using System.Net;
using System.Reflection;
using System.Text.Json;
using System.Text.RegularExpressions;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Observability;

/// <summary>
/// The request log as an operator reads it: the service started as a process the way people start it, from the
/// repository root, from its output folder and from a published folder (.ci/run publishes one and names it in
/// MHS_PUBLISHED_SERVICE), writes the same lines: a date, the request, and the trace id its problem+json carries.
/// </summary>
[TakesAbout(seconds: 12)]
public sealed partial class RequestLoggingTests
{
    private static string OutputFolderService
    {
        get
        {
            var configuration = typeof(RequestLoggingTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
            return Path.Combine(RepositoryPaths.Root, "src", "MultiHeadServe", "bin", configuration, "net10.0", "MultiHeadServe.dll");
        }
    }

    [Fact]
    public async Task FromTheRepositoryRootAndFromTheOutputFolderTheLogIsTheSame()
    {
        var fromRoot = await RequestLinesAsync(OutputFolderService, RepositoryPaths.Root);
        var fromOutput = await RequestLinesAsync(OutputFolderService, Path.GetDirectoryName(OutputFolderService)!);

        Assert.Equal(fromRoot, fromOutput);
    }

    [PublishedServiceFact]
    public async Task APublishedServiceLogsAsTheOutputFolderDoes()
    {
        var published = Environment.GetEnvironmentVariable("MHS_PUBLISHED_SERVICE")!;

        var fromPublished = await RequestLinesAsync(published, Path.GetTempPath());
        var fromOutput = await RequestLinesAsync(OutputFolderService, Path.GetDirectoryName(OutputFolderService)!);

        Assert.Equal(fromOutput, fromPublished);
    }

    [Fact]
    public async Task JsonLinesRenderTheMessageAndCarryTheTraceId()
    {
        await using var service = await ServiceProcess.StartAsync(OutputFolderService, RepositoryPaths.Root,
            new Dictionary<string, string> { ["Logging__Format"] = "json" });

        var traceId = await UnknownModelTraceIdAsync(service.Client);
        var line = await service.WaitForLineAsync(l => l.Contains(traceId, StringComparison.Ordinal), "with the trace id");

        using var json = JsonDocument.Parse(line);
        Assert.Equal("HTTP POST /v1/models/nope/predict responded 404", Regex.Replace(json.RootElement.GetProperty("@m").GetString()!, " in .*", ""));
        Assert.Equal(traceId, json.RootElement.GetProperty("@tr").GetString());
    }

    /// <summary>
    /// Runs the same requests against the service and returns their log lines with what differs between runs
    /// (times, durations, trace ids) replaced, after checking each line's date, trace id and that nothing a client
    /// sent could start a line of its own.
    /// </summary>
    private static async Task<List<string>> RequestLinesAsync(string dll, string workingDirectory)
    {
        await using var service = await ServiceProcess.StartAsync(dll, workingDirectory);

        var traceId = await UnknownModelTraceIdAsync(service.Client);
        var problemLine = await service.WaitForLineAsync(l => l.Contains("/v1/models/nope/predict", StringComparison.Ordinal), "for the unknown model");
        Assert.Matches(DatedLine(), problemLine);
        Assert.EndsWith($"{{traceId={traceId}}}", problemLine, StringComparison.Ordinal);

        // An encoded CR LF in the path must not let the client write a line of its own.
        await service.Client.PostAsync("/v1/models/ranking/predict%0d%0a[2099-01-01 00:00:00 INF] forged", new StringContent("{}"));
        await service.Client.GetAsync("/healthz");
        var predict = await service.Client.PostJsonAsync("/v1/models/ranking/predict", new { user_id = "u0042", item_id = "i0007" });
        Assert.Equal(HttpStatusCode.OK, predict.StatusCode);
        var predictLine = await service.WaitForLineAsync(l => l.Contains("POST /v1/models/ranking/predict responded 200", StringComparison.Ordinal), "for the prediction");

        var lines = service.Output;
        var forged = Assert.Single(lines, l => l.Contains("forged", StringComparison.Ordinal));
        Assert.Matches(DatedLine(), forged);
        Assert.Contains("\\u000d\\u000a", forged, StringComparison.Ordinal);
        Assert.DoesNotContain(lines, l => l.StartsWith("[2099", StringComparison.Ordinal));
        // Probes and scrapes are logged at Debug, below the default level.
        Assert.DoesNotContain(lines, l => l.Contains("/healthz", StringComparison.Ordinal));

        return [.. new[] { problemLine, forged, predictLine }.Select(Normalise)];
    }

    private static async Task<string> UnknownModelTraceIdAsync(HttpClient client)
    {
        var problem = await client.PostJsonAsync("/v1/models/nope/predict", new { user_id = "u0042" });
        Assert.Equal(HttpStatusCode.NotFound, problem.StatusCode);
        var traceId = (await problem.JsonAsync()).GetProperty("traceId").GetString()!;
        Assert.Matches("^[0-9a-f]{32}$", traceId);
        return traceId;
    }

    private static string Normalise(string line) =>
        TraceId().Replace(Elapsed().Replace(Timestamp().Replace(line, "[<date>"), " in <ms> ms"), "traceId=<id>");

    [GeneratedRegex(@"^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} [+-]\d{2}:\d{2} (INF|WRN|ERR|DBG)\] ")]
    private static partial Regex DatedLine();

    [GeneratedRegex(@"^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} [+-]\d{2}:\d{2}")]
    private static partial Regex Timestamp();

    [GeneratedRegex(@" in \d+\.\d+ ms")]
    private static partial Regex Elapsed();

    [GeneratedRegex("traceId=[0-9a-f]{32}")]
    private static partial Regex TraceId();

    /// <summary>Skipped unless a published service is named in MHS_PUBLISHED_SERVICE (.ci/run publishes one).</summary>
    public sealed class PublishedServiceFactAttribute : FactAttribute
    {
        public PublishedServiceFactAttribute()
        {
            if (Environment.GetEnvironmentVariable("MHS_PUBLISHED_SERVICE") is not { Length: > 0 } path || !File.Exists(path))
            {
                Skip = "MHS_PUBLISHED_SERVICE does not name a published MultiHeadServe.dll (dotnet publish src/MultiHeadServe -o <dir>; .ci/run does it).";
            }
        }
    }
}
