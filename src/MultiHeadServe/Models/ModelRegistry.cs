using System.Globalization;

namespace MultiHeadServe.Models;

/// <summary>
/// The models this process serves now, each with its served versions. Lookups are lock-free reads of an immutable
/// snapshot; <see cref="ModelRepository"/> replaces a model's entry whole (a reload swaps it atomically) and only then
/// retires the versions the new entry no longer holds, so a lookup never finds a retired version for long: it looks
/// again and finds the replacement. Thread-safe.
/// </summary>
/// <param name="memory">Gives memory back after loads and drains.</param>
public sealed class ModelRegistry(ProcessMemory memory) : IDisposable
{
    private readonly object _writeGate = new();
    private volatile Snapshot _snapshot = new(new Dictionary<string, ServedModel>(StringComparer.Ordinal), 0);
    private volatile bool _loaded;

    /// <summary>Every served model's default version (its highest served one).</summary>
    public IReadOnlyCollection<LoadedModel> All => _snapshot.Defaults;

    /// <summary>Every served model with all its served versions.</summary>
    public IReadOnlyCollection<ServedModel> Models => (IReadOnlyCollection<ServedModel>)_snapshot.Models.Values;

    /// <summary>Counts the changes to what is served (a model loaded, reloaded or unloaded): what describes the served models is current while it stays the same.</summary>
    public long Generation => _snapshot.Generation;

    /// <summary>True once start-up loading has finished.</summary>
    public bool Loaded => _loaded;

    /// <summary>The default version of <paramref name="name"/> (no hold is taken: see <see cref="TryLease"/> for requests).</summary>
    public bool TryGet(string name, out LoadedModel model)
    {
        if (_snapshot.Models.TryGetValue(name, out var served))
        {
            model = served.Default;
            return true;
        }

        model = null!;
        return false;
    }

    public bool TryGetServed(string name, out ServedModel model) => _snapshot.Models.TryGetValue(name, out model!);

    /// <summary>
    /// Finds <paramref name="name"/> at <paramref name="version"/> (null: its default version) and holds it for a
    /// request: release with <see cref="LoadedModel.Release"/> when the request ends. A version replaced meanwhile is
    /// looked up again, so the request runs on what is served at the moment it was admitted.
    /// </summary>
    public ModelLookup TryLease(string name, string? version, out LoadedModel model)
    {
        model = null!;
        while (true)
        {
            var snapshot = _snapshot;
            if (!snapshot.Models.TryGetValue(name, out var served))
            {
                return ModelLookup.UnknownModel;
            }

            LoadedModel candidate;
            if (version is null)
            {
                candidate = served.Default;
            }
            else if (!int.TryParse(version, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || !served.Versions.TryGetValue(number, out candidate!))
            {
                return ModelLookup.UnknownVersion;
            }

            if (candidate.TryAcquire())
            {
                model = candidate;
                return ModelLookup.Found;
            }

            if (ReferenceEquals(snapshot, _snapshot))
            {
                // Retired without a replacement published: the registry is shutting down.
                return ModelLookup.UnknownModel;
            }
        }
    }

    internal void MarkLoaded() => _loaded = true;

    /// <summary>
    /// After the start-up load: reading, fusing and warming every model leaves far more garbage than live data (with
    /// the demo models, 1.2 GB resident of which 0.2 GB is needed), which the collector would otherwise keep committed
    /// for a long time. Runs before the server accepts requests.
    /// </summary>
    internal void ReturnStartUpMemory() => memory.Return();

    /// <summary>
    /// Publishes <paramref name="model"/> (null: removes <paramref name="name"/>), then retires the versions of the
    /// entry it replaces that it does not keep. Requests holding them finish on them.
    /// </summary>
    internal void Set(string name, ServedModel? model)
    {
        ServedModel? previous;
        lock (_writeGate)
        {
            var models = new Dictionary<string, ServedModel>(_snapshot.Models, StringComparer.Ordinal);
            models.TryGetValue(name, out previous);
            if (model is null)
            {
                models.Remove(name);
            }
            else
            {
                models[name] = model;
            }

            _snapshot = new Snapshot(models, _snapshot.Generation + 1);
        }

        // Loads and unloads are rare, and each leaves the process larger than it needs to be unless memory is given back:
        // so that loading and unloading versions leaves the process's size where it was. (Not at shutdown, which
        // retires every version through Dispose: the process is about to give everything back.)
        if (previous is null)
        {
            // A model loaded while serving: reading and warming it left garbage behind, as the start-up load did.
            if (model is not null && _loaded)
            {
                memory.ReturnSoon();
            }

            return;
        }

        List<Task>? drains = null;
        foreach (var version in previous.Versions.Values)
        {
            if (model is null || !model.Versions.Values.Contains(version))
            {
                version.Retire();
                (drains ??= []).Add(version.Drained);
            }
        }

        if (drains is not null)
        {
            // Their request buffers, decoders and metadata are garbage now, and their sessions freed native memory.
            _ = Task.WhenAll(drains).ContinueWith(_ => memory.ReturnSoon(), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        }
    }

    public void Dispose()
    {
        foreach (var model in _snapshot.Models.Values)
        {
            foreach (var version in model.Versions.Values)
            {
                version.Retire();
            }
        }
    }

    private sealed class Snapshot(Dictionary<string, ServedModel> models, long generation)
    {
        public IReadOnlyDictionary<string, ServedModel> Models { get; } = models;

        /// <summary>How many snapshots came before this one.</summary>
        public long Generation { get; } = generation;

        public IReadOnlyCollection<LoadedModel> Defaults { get; } = [.. models.Values.Select(m => m.Default)];
    }
}

/// <summary>What <see cref="ModelRegistry.TryLease"/> found.</summary>
public enum ModelLookup
{
    Found,
    UnknownModel,
    UnknownVersion,
}

/// <summary>
/// A served model: the versions its policy serves (at least one), its default (the highest), the version folders
/// present when it was last loaded and the versions that could not be loaded, with why. Immutable.
/// </summary>
public sealed class ServedModel
{
    public ServedModel(string name, IReadOnlyDictionary<int, LoadedModel> versions, IReadOnlyList<int> repositoryVersions, IReadOnlyList<VersionFailure> failures)
    {
        ArgumentNullException.ThrowIfNull(versions);
        if (versions.Count == 0)
        {
            throw new ArgumentException("A served model has at least one version.", nameof(versions));
        }

        Name = name;
        Versions = versions;
        ServedVersions = [.. versions.Keys.Order()];
        Default = versions[ServedVersions[^1]];
        RepositoryVersions = repositoryVersions;
        Failures = failures;
    }

    public string Name { get; }

    public IReadOnlyDictionary<int, LoadedModel> Versions { get; }

    /// <summary>The served version numbers, ascending.</summary>
    public IReadOnlyList<int> ServedVersions { get; }

    /// <summary>The version unversioned routes use: the highest served.</summary>
    public LoadedModel Default { get; }

    /// <summary>The numeric version folders present at the last load, ascending.</summary>
    public IReadOnlyList<int> RepositoryVersions { get; }

    /// <summary>Versions the last load could not serve, newest first, with the reason.</summary>
    public IReadOnlyList<VersionFailure> Failures { get; }
}
