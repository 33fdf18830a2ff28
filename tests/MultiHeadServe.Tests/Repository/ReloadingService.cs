using System.Diagnostics.Metrics;
using System.Net.Http.Headers;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using MultiHeadServe.Inference;
using MultiHeadServe.Models;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Repository;

/// <summary>
/// The service over a temporary repository that a test changes while it serves: API keys on (so the repository API
/// exists), the repository polled on a <see cref="FakeTimeProvider"/> the test advances (the poller's clock only: the
/// store's timeouts and the rest keep real time), and the model-load metric
/// of this app alone.
/// </summary>
internal sealed class ReloadingService : IAsyncDisposable
{
    public const string Key = "reload-key";
    public static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(30);

    private readonly ServeFactory _factory;
    private readonly WebApplicationFactory<Program> _app;
    private readonly MeterListener _listener = new();
    private readonly List<(string Model, string Outcome)> _loads = [];

    public ReloadingService(TempRepository repository, params (string Key, string? Value)[] settings)
    {
        Repository = repository;
        _factory = new ServeFactory(repository.Settings([("Security:ApiKeys:0", Key),
            ("ModelRepository:PollIntervalSeconds", PollInterval.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)), .. settings]));
        _app = _factory.WithWebHostBuilder(builder => builder.ConfigureTestServices(services => services.AddKeyedSingleton<TimeProvider>(ModelRepositoryPoller.ClockKey, Time)));
        Client = NewClient();
        var meters = _app.Services.GetRequiredService<IMeterFactory>();
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Name == "mhs.model.loads" && ReferenceEquals(instrument.Meter.Scope, meters))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            string? model = null, outcome = null;
            foreach (var tag in tags)
            {
                if (tag.Key == "model")
                {
                    model = tag.Value as string;
                }
                else if (tag.Key == "outcome")
                {
                    outcome = tag.Value as string;
                }
            }

            lock (_loads)
            {
                _loads.Add((model!, outcome!));
            }
        });
        _listener.Start();
    }

    public TempRepository Repository { get; }

    public FakeTimeProvider Time { get; } = new();

    public HttpClient Client { get; }

    public IServiceProvider Services => _app.Services;

    public ModelRegistry Registry => Services.GetRequiredService<ModelRegistry>();

    public ModelRepository ModelRepository => Services.GetRequiredService<ModelRepository>();

    public InferenceService Inference => Services.GetRequiredService<InferenceService>();

    /// <summary>A client that sends the API key.</summary>
    public HttpClient NewClient()
    {
        var client = _app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);
        return client;
    }

    /// <summary>Loads of <paramref name="model"/> this app counted with <paramref name="outcome"/> since it started (after start-up).</summary>
    public int Loads(string model, string outcome)
    {
        lock (_loads)
        {
            return _loads.Count(l => l.Model == model && l.Outcome == outcome);
        }
    }

    /// <summary>The versions of <paramref name="model"/> served now, ascending (empty when it is not served).</summary>
    public IReadOnlyList<int> Served(string model) => Registry.TryGetServed(model, out var served) ? served.ServedVersions : [];

    /// <summary>Advances the clock one interval and waits until the poll it starts has finished.</summary>
    public async Task PollAsync()
    {
        var before = ModelRepository.Polls;
        Time.Advance(PollInterval);
        await WaitUntilAsync(() => ModelRepository.Polls > before, "a poll to finish");
    }

    /// <summary>Adds version <paramref name="to"/> as a copy of version <paramref name="from"/>'s files (see <see cref="AddVersion"/>).</summary>
    public void CopyVersion(string model, int from, int to)
    {
        var source = VersionPath(model, from);
        AddVersion(model, to, Directory.EnumerateFiles(source).ToDictionary(f => Path.GetFileName(f), f => File.ReadAllBytes(f)));
    }

    /// <summary>
    /// Writes a version folder whole: its files go to a staging folder outside the model first, which is then renamed
    /// in, as a deployment should, so no poll sees half a version.
    /// </summary>
    public void AddVersion(string model, int version, IReadOnlyDictionary<string, byte[]> files)
    {
        var staging = Directory.CreateDirectory(Path.Combine(Repository.Path, ".staging", $"{model}-{version}"));
        foreach (var (name, bytes) in files)
        {
            File.WriteAllBytes(Path.Combine(staging.FullName, name), bytes);
        }

        Directory.Move(staging.FullName, VersionPath(model, version));
    }

    public string VersionPath(string model, int version) =>
        Path.Combine(Repository.Path, model, version.ToString(System.Globalization.CultureInfo.InvariantCulture));

    public static async Task WaitUntilAsync(Func<bool> condition, string what, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"Waited {seconds} s for {what}.");
            await Task.Delay(10);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Dispose();
        Client.Dispose();
        await _app.DisposeAsync();
        await _factory.DisposeAsync();
    }
}
