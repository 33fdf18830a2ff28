using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MultiHeadServe.Tests.Infrastructure;

/// <summary>
/// The real service in memory: the committed demo models, real ONNX Runtime (CPU), and a real SQLite file
/// of its own in a temporary folder (seeded from the models' CSVs at start-up). One per test; dispose it.
/// Settings are applied as host settings, so they are visible while Program builds its services.
/// </summary>
public sealed class ServeFactory : WebApplicationFactory<Program>
{
    private readonly string _dataDirectory = Directory.CreateTempSubdirectory("mhs-test-").FullName;

    public ServeFactory(IDictionary<string, string?>? settings = null)
    {
        Settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase)
        {
            ["ModelRepository:Path"] = RepositoryPaths.Models,
            ["ModelRepository:Provider"] = "Cpu",
            ["ModelRepository:IntraOpThreads"] = "1",
            // The light demo models; the objects model (a 65 MB ResNet-18) has tests of its own.
            ["ModelRepository:Only:0"] = "shapes",
            ["ModelRepository:Only:1"] = "ranking",
            ["ModelRepository:Only:2"] = "ranking-mtl",
            ["ModelRepository:Only:3"] = "conversion",
            ["FeatureStore:SqlitePath"] = Path.Combine(_dataDirectory, "features.db"),
            // A test app stops at once: no SIGTERM drain.
            ["Serve:ShutdownDrainSeconds"] = "0",
            // The test host runs many apps at once: a compacting collection after a reload would pause every test.
            // (LoadUnloadCycleTests measure it in a process of its own.)
            ["ModelRepository:CompactAfterUnload"] = "false",
        };
        settings ??= new Dictionary<string, string?>();
        if (settings.Keys.Any(k => k.StartsWith("ModelRepository:Only:", StringComparison.OrdinalIgnoreCase)) ||
            (settings.TryGetValue("ModelRepository:Path", out var path) && path != RepositoryPaths.Models))
        {
            // The test chose its models (a temporary repository holds only what it copied): no default filter.
            foreach (var key in Settings.Keys.Where(k => k.StartsWith("ModelRepository:Only:", StringComparison.OrdinalIgnoreCase)).ToList())
            {
                Settings.Remove(key);
            }
        }

        foreach (var (key, value) in settings)
        {
            if (value is not null || !key.StartsWith("ModelRepository:Only:", StringComparison.OrdinalIgnoreCase))
            {
                Settings[key] = value;
            }
        }
    }

    public Dictionary<string, string?> Settings { get; }

    public string DataDirectory => _dataDirectory;

    public T Service<T>()
        where T : notnull => Services.GetRequiredService<T>();

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        builder.ConfigureLogging(logging => logging.AddFilter(level => level >= Microsoft.Extensions.Logging.LogLevel.Warning));
        foreach (var (key, value) in Settings)
        {
            builder.UseSetting(key, value);
        }
    }

    /// <summary>Which factory's start-up the current flow belongs to (flows into the thread that runs Program).</summary>
    private static readonly AsyncLocal<ServeFactory?> Starting = new();

    private Exception? _startupFailure;

    /// <summary>
    /// Starts the app. When start-up fails (a bad manifest), the test host may dispose the app before its own start-up
    /// code reads the failure and then reports an <see cref="ObjectDisposedException"/> instead: the start-up failure
    /// this app's own flow threw is what the test sees, whichever of the two wins.
    /// </summary>
    protected override IHost CreateHost(IHostBuilder builder)
    {
        Starting.Value = this;
        AppDomain.CurrentDomain.FirstChanceException += RecordStartupFailure;
        try
        {
            return base.CreateHost(builder);
        }
        catch (ObjectDisposedException) when (_startupFailure is { } failure)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
            throw;
        }
        finally
        {
            AppDomain.CurrentDomain.FirstChanceException -= RecordStartupFailure;
            Starting.Value = null;
        }
    }

    private void RecordStartupFailure(object? sender, System.Runtime.ExceptionServices.FirstChanceExceptionEventArgs e)
    {
        if (e.Exception is MultiHeadServe.Models.ManifestException && ReferenceEquals(Starting.Value, this))
        {
            _startupFailure = e.Exception; // the last one: a failed version caught by the fallback comes before the final verdict
        }
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_dataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
