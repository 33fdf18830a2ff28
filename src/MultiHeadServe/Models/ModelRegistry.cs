using Microsoft.Extensions.Options;
using MultiHeadServe.Inference.Engine;
using MultiHeadServe.Observability;

namespace MultiHeadServe.Models;

/// <summary>
/// The models this process serves, loaded once at start-up. Lookups are lock-free reads of an
/// immutable dictionary; thread-safe.
/// </summary>
public sealed class ModelRegistry : IDisposable
{
    private volatile IReadOnlyDictionary<string, LoadedModel> _models = new Dictionary<string, LoadedModel>();

    public IReadOnlyCollection<LoadedModel> All => (IReadOnlyCollection<LoadedModel>)_models.Values;

    /// <summary>True once start-up loading has finished.</summary>
    public bool Loaded { get; private set; }

    public bool TryGet(string name, out LoadedModel model) => _models.TryGetValue(name, out model!);

    internal void Publish(IReadOnlyDictionary<string, LoadedModel> models)
    {
        _models = models;
        Loaded = true;
    }

    public void Dispose()
    {
        foreach (var model in _models.Values)
        {
            model.Dispose();
        }
    }
}

/// <summary>
/// Loads every model of the repository before the server accepts requests. A model that cannot be served
/// stops start-up with the manifest error: serving half a repository silently is worse than not starting.
/// </summary>
public sealed class ModelRepositoryLoader(
    ModelRegistry registry,
    IOptions<ModelRepositoryOptions> options,
    IHostEnvironment environment,
    ILoggerFactory loggerFactory,
    ServeMetrics metrics,
    ILogger<ModelLoader> loaderLogger,
    ILogger<ModelRepositoryLoader> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        // Before the first session: the runtime's own messages go to this log, not to stderr.
        RuntimeEnvironment.UseLogger(loggerFactory, options.Value.RuntimeLogLevel);
        var root = ResolveRepository(options.Value.Path, environment.ContentRootPath);
        var loader = new ModelLoader(options.Value, loaderLogger);
        var only = options.Value.Only;
        var models = new Dictionary<string, LoadedModel>(StringComparer.Ordinal);
        try
        {
            foreach (var directory in System.IO.Directory.EnumerateDirectories(root).Order(StringComparer.Ordinal))
            {
                var name = Path.GetFileName(directory);
                if (!File.Exists(Path.Combine(directory, ModelLoader.ManifestFile)) || (only.Count > 0 && !only.Contains(name)))
                {
                    continue;
                }

                cancellationToken.ThrowIfCancellationRequested();
                try
                {
                    var model = loader.Load(directory);
                    models[name] = model;
                    foreach (var _ in model.FailedVersions)
                    {
                        metrics.RecordModelLoad(name, "failed");
                    }

                    metrics.RecordModelLoad(name, "loaded");
                }
                catch
                {
                    metrics.RecordModelLoad(name, "failed");
                    throw;
                }
            }
        }
        catch
        {
            foreach (var model in models.Values)
            {
                model.Dispose();
            }

            throw;
        }

        logger.LogInformation("Model repository {Path}: {Count} model(s) ready: {Models}", root, models.Count, string.Join(", ", models.Keys));
        registry.Publish(models);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>A relative path is tried from the content root, then from each parent folder.</summary>
    internal static string ResolveRepository(string path, string contentRoot)
    {
        if (Path.IsPathRooted(path))
        {
            return System.IO.Directory.Exists(path)
                ? path
                : throw new DirectoryNotFoundException($"The model repository '{path}' does not exist (ModelRepository:Path).");
        }

        for (var directory = new DirectoryInfo(contentRoot); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, path);
            if (System.IO.Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException(
            $"The model repository '{path}' was not found under {contentRoot} or any parent folder (ModelRepository:Path).");
    }
}
