using System.Text;
using System.Text.Json;
using MultiHeadServe.Benchmarks.Models;

namespace MultiHeadServe.Benchmarks.Hosting;

/// <summary>
/// The plain endpoints of a run, each its own process: one over each model's multi-head graph (scenario f) and one
/// over each single-head graph (the x APIs of scenario c). Disposing stops them all.
/// </summary>
internal sealed class PlainProcesses : IAsyncDisposable
{
    private readonly Dictionary<string, ServerProcess> _byModel;

    private PlainProcesses(Dictionary<string, ServerProcess> byModel) => _byModel = byModel;

    /// <summary>The plain endpoint serving the repository's model folder <paramref name="model"/>.</summary>
    public ServerProcess Of(string model) => _byModel[model];

    public static async Task<PlainProcesses> StartAsync(BenchmarkRepository repository, Scenarios scenarios, IReadOnlyDictionary<string, string> environment,
        bool cuda, TextWriter progress, CancellationToken cancellationToken)
    {
        var folders = new List<string>();
        foreach (var deployment in repository.Models)
        {
            if (scenarios.HasFlag(Scenarios.Plain))
            {
                folders.Add(deployment.MultiHead);
            }

            if (scenarios.HasFlag(Scenarios.SeparateApis))
            {
                folders.AddRange(deployment.SingleHead.Select(d => d.Name));
            }
        }

        var started = new Dictionary<string, ServerProcess>(StringComparer.Ordinal);
        try
        {
            if (folders.Count > 0)
            {
                progress.WriteLine($"Starting {folders.Count} plain endpoint(s) ...");
            }

            foreach (var folder in folders)
            {
                started[folder] = await ServerProcess.StartAsync($"the plain endpoint for {folder}", typeof(PlainProcesses).Assembly.Location,
                    [PlainEndpoint.Command, Path.Combine(repository.ModelsPath, folder), repository.FeatureStorePath, cuda ? "cuda" : "cpu"],
                    environment, TimeSpan.FromMinutes(1), cancellationToken);
            }

            return new PlainProcesses(started);
        }
        catch
        {
            foreach (var process in started.Values)
            {
                await process.DisposeAsync();
            }

            throw;
        }
    }

    /// <summary>
    /// The comparison is only fair between equal answers: the plain endpoint's heads must carry the service's
    /// numbers (probabilities, values, boxes) within 1e-4 for the first bodies of each model.
    /// </summary>
    /// <exception cref="InvalidOperationException">A number differs.</exception>
    public static async Task CheckSameHeadsAsync(IReadOnlyList<BenchmarkModel> models, ServerProcess service, PlainProcesses plain, HttpClient client, CancellationToken cancellationToken)
    {
        foreach (var model in models)
        {
            if (!plain._byModel.TryGetValue(model.Name, out var endpoint))
            {
                continue;
            }

            foreach (var body in model.Bodies.Take(8))
            {
                var expected = await HeadsAsync(client, new Uri(service.BaseAddress, $"v1/models/{model.Name}/predict"), body, cancellationToken);
                var actual = await HeadsAsync(client, new Uri(endpoint.BaseAddress, PlainEndpoint.Route.TrimStart('/')), body, cancellationToken);
                foreach (var head in expected.EnumerateObject())
                {
                    foreach (var field in new[] { "probability", "value", "index" })
                    {
                        if (head.Value.TryGetProperty(field, out var number))
                        {
                            Compare(number.GetDouble(), actual.GetProperty(head.Name).GetProperty(field).GetDouble(), $"{model.Name} {head.Name}.{field}");
                        }
                    }

                    if (head.Value.TryGetProperty("box", out var box))
                    {
                        foreach (var corner in box.EnumerateObject())
                        {
                            Compare(corner.Value.GetDouble(), actual.GetProperty(head.Name).GetProperty("box").GetProperty(corner.Name).GetDouble(), $"{model.Name} {head.Name}.box.{corner.Name}");
                        }
                    }
                }
            }
        }
    }

    private static void Compare(double expected, double actual, string what)
    {
        if (Math.Abs(expected - actual) > 1e-4 * Math.Max(1, Math.Abs(expected)))
        {
            throw new InvalidOperationException($"The plain endpoint answers {what} = {actual}, the service {expected}: the comparison would not be fair.");
        }
    }

    private static async Task<JsonElement> HeadsAsync(HttpClient client, Uri target, byte[] body, CancellationToken cancellationToken)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using var response = await client.PostAsync(target, content, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"POST {target} answered {(int)response.StatusCode}: {text}");
        }

        return JsonDocument.Parse(Encoding.UTF8.GetBytes(text)).RootElement.GetProperty("heads").Clone();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _byModel.Values)
        {
            await process.DisposeAsync();
        }
    }
}
