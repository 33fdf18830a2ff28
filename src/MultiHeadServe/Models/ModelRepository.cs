using System.Globalization;
using Microsoft.Extensions.Options;
using MultiHeadServe.Inference.Engine;
using MultiHeadServe.Observability;

namespace MultiHeadServe.Models;

/// <summary>
/// The model repository on disk and what of it is served: loads models at start-up, and afterwards loads, reloads
/// and unloads them without a restart (Triton's model control), on request or when a poll finds a change.
/// <para>
/// A reload loads each new or changed version the model's <see cref="VersionPolicy"/> selects, validates it against
/// the manifest and warms it, then swaps the model's entry in the <see cref="ModelRegistry"/> at once; versions whose
/// files did not change are kept as they are (same session, same batcher). A version that fails (a corrupt file, a
/// manifest that does not match its graph, a failed warm-up) changes nothing: the version it would have replaced
/// keeps serving, and the failure is logged, counted (<c>mhs.model.loads</c>, outcome <c>failed</c>) and shown by
/// <see cref="Index"/>. A failed version is tried again when its files change or a load is asked for.
/// </para>
/// Operations run one at a time; <see cref="Index"/> may be read at any time. Thread-safe.
/// </summary>
public sealed class ModelRepository(
    ModelRegistry registry,
    IOptions<ModelRepositoryOptions> options,
    IHostEnvironment environment,
    ServeMetrics metrics,
    ProcessMemory memory,
    ILogger<ModelLoader> loaderLogger,
    ILogger<ModelRepository> logger) : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly LoadThread _loadThread = new();
    private readonly Dictionary<string, ModelRecord> _records = new(StringComparer.Ordinal);
    private readonly ModelLoader _loader = new(options.Value, memory, loaderLogger);
    private volatile IReadOnlyDictionary<string, RecordView> _views = new Dictionary<string, RecordView>(StringComparer.Ordinal);
    private string? _root;
    private long _polls;

    /// <summary>Polls completed since start.</summary>
    public long Polls => Interlocked.Read(ref _polls);

    /// <summary>The repository folder (resolved at start-up).</summary>
    public string Root => _root ?? throw new InvalidOperationException("The model repository is not loaded yet.");

    /// <summary>
    /// Loads every model of the repository before the server accepts requests. A model none of whose versions can be
    /// served stops start-up with the reason: serving half a repository silently is worse than not starting.
    /// </summary>
    /// <exception cref="ManifestException">A model cannot be served.</exception>
    public void LoadAll(CancellationToken cancellationToken)
    {
        _root = ResolveRepository(options.Value.Path, environment.ContentRootPath);
        _gate.Wait(cancellationToken);
        try
        {
            foreach (var name in ModelFolders())
            {
                cancellationToken.ThrowIfCancellationRequested();
                Load(name, force: true, startup: true);
            }

            PublishViews();
        }
        catch
        {
            foreach (var model in registry.Models.ToList())
            {
                registry.Set(model.Name, null);
            }

            throw;
        }
        finally
        {
            _gate.Release();
        }

        logger.LogInformation("Model repository {Path}: {Count} model(s) ready: {Models}", _root, registry.Models.Count,
            string.Join(", ", registry.Models.Select(m => $"{m.Name} ({string.Join(", ", m.ServedVersions)})")));
        registry.MarkLoaded();
        registry.ReturnStartUpMemory();
    }

    /// <summary>
    /// Loads or reloads <paramref name="name"/> (the protocol's <c>load</c>): every version its policy selects is
    /// loaded again, changed or not, then swapped in. A model that was unloaded is served again.
    /// </summary>
    public async Task<ModelLoadOutcome> LoadAsync(string name, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (!IsModelName(name) || !File.Exists(Path.Combine(Root, name, ModelLoader.ManifestFile)))
            {
                return new ModelLoadOutcome(ModelLoadStatus.NotFound, $"The model repository has no model '{name}' (no {name}/{ModelLoader.ManifestFile}).");
            }

            Record(name).Unloaded = false;
            return await OffThreadPool(() => Load(name, force: true, startup: false));
        }
        finally
        {
            PublishViews();
            _gate.Release();
        }
    }

    /// <summary>
    /// Stops serving <paramref name="name"/> (the protocol's <c>unload</c>): new requests get 404 at once, requests
    /// already admitted finish, then its sessions are disposed. Polling leaves it unloaded until it is loaded again.
    /// </summary>
    /// <returns>False when the model is neither served nor in the repository.</returns>
    public async Task<bool> UnloadAsync(string name, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var served = registry.TryGetServed(name, out _);
            if (!served && !(IsModelName(name) && File.Exists(Path.Combine(Root, name, ModelLoader.ManifestFile))))
            {
                return false;
            }

            Record(name).Unloaded = true;
            if (served)
            {
                registry.Set(name, null);
                logger.LogInformation("Unloaded model {Model}", name);
            }

            return true;
        }
        finally
        {
            PublishViews();
            _gate.Release();
        }
    }

    /// <summary>
    /// One look at the repository: models added or changed are loaded, models whose folder is gone are unloaded.
    /// Models unloaded on request stay unloaded. Unchanged models cost a listing of their files.
    /// </summary>
    public async Task PollAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            await OffThreadPool(() => Poll(cancellationToken));
        }
        finally
        {
            PublishViews();
            Interlocked.Increment(ref _polls);
            _gate.Release();
        }
    }

    private bool Poll(CancellationToken cancellationToken)
    {
        var present = ModelFolders().ToHashSet(StringComparer.Ordinal);
        // Gone means the folder or its manifest is gone: a model loaded on request outside ModelRepository:Only stays.
        foreach (var gone in registry.Models.Select(m => m.Name).Where(n => !File.Exists(Path.Combine(Root, n, ModelLoader.ManifestFile))).ToList())
        {
            logger.LogInformation("Model {Model} left the repository: unloaded", gone);
            registry.Set(gone, null);
            _records.Remove(gone);
        }

        foreach (var name in present.Union(registry.Models.Select(m => m.Name)).Where(n => File.Exists(Path.Combine(Root, n, ModelLoader.ManifestFile))))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var record = Record(name);
            if (record.Unloaded || ModelFolderFingerprint.Of(Path.Combine(Root, name)).Whole == record.LastScan)
            {
                continue;
            }

            Load(name, force: false, startup: false);
        }

        return true;
    }

    /// <summary>Runs blocking load work on the repository's load thread (see <see cref="LoadThread"/>).</summary>
    private Task<T> OffThreadPool<T>(Func<T> work) => _loadThread.Run(work);

    /// <summary>
    /// The protocol's repository index: every model folder, with one entry per version folder (READY or UNAVAILABLE
    /// with the reason) or, for a model that is not served, one entry saying why. <paramref name="readyOnly"/>: READY only.
    /// </summary>
    public IReadOnlyList<RepositoryIndexEntry> Index(bool readyOnly)
    {
        var entries = new List<RepositoryIndexEntry>();
        var views = _views;
        var folders = _root is null ? [] : System.IO.Directory.EnumerateDirectories(_root)
            .Where(d => File.Exists(Path.Combine(d, ModelLoader.ManifestFile))).Select(d => Path.GetFileName(d)).ToList();
        foreach (var name in views.Keys.Union(registry.Models.Select(m => m.Name)).Union(folders).Order(StringComparer.Ordinal))
        {
            views.TryGetValue(name, out var view);
            if (registry.TryGetServed(name, out var served))
            {
                var failures = served.Failures.ToDictionary(f => f.Version, f => f.Reason);
                foreach (var version in served.RepositoryVersions.Union(served.ServedVersions).Order())
                {
                    var text = version.ToString(CultureInfo.InvariantCulture);
                    if (served.Versions.ContainsKey(version))
                    {
                        entries.Add(new RepositoryIndexEntry(name, text, ModelStates.Ready, failures.TryGetValue(version, out var kept)
                            ? $"the reload of this version failed; the version loaded before keeps serving: {kept}"
                            : null));
                    }
                    else
                    {
                        entries.Add(new RepositoryIndexEntry(name, text, ModelStates.Unavailable,
                            failures.GetValueOrDefault(version) ?? "not served: the model's version policy does not select it"));
                    }
                }
            }
            else if (view is { Unloaded: true })
            {
                entries.Add(new RepositoryIndexEntry(name, null, ModelStates.Unavailable, "unloaded"));
            }
            else if (view is { Failure: { } failure })
            {
                entries.Add(new RepositoryIndexEntry(name, null, ModelStates.Unavailable, failure));
                entries.AddRange(view.VersionFailures.OrderBy(f => f.Version).Select(f =>
                    new RepositoryIndexEntry(name, f.Version.ToString(CultureInfo.InvariantCulture), ModelStates.Unavailable, f.Reason)));
            }
            else
            {
                // In the repository, never loaded (not among ModelRepository:Only, or not polled yet).
                entries.Add(new RepositoryIndexEntry(name, null, null, null));
            }
        }

        return readyOnly ? entries.Where(e => e.State == ModelStates.Ready).ToList() : entries;
    }

    public void Dispose()
    {
        _loadThread.Dispose();
        _gate.Dispose();
    }

    /// <summary>Loads what <paramref name="name"/>'s policy selects and publishes it. Called under the gate.</summary>
    private ModelLoadOutcome Load(string name, bool force, bool startup)
    {
        var directory = Path.Combine(Root, name);
        var displayPath = ModelLoader.DisplayPath(directory);
        var record = Record(name);
        registry.TryGetServed(name, out var current);
        var scan = ModelFolderFingerprint.Of(directory);
        record.LastScan = scan.Whole;

        ModelManifest manifest;
        IReadOnlyList<int> versions;
        try
        {
            manifest = ModelLoader.ReadManifest(directory);
            versions = ModelLoader.VersionsOf(directory);
            if (versions.Count == 0)
            {
                throw new ManifestException(displayPath, "versions", "no numeric version folder (e.g. 1/) holds the model.");
            }
        }
        catch (ManifestException ex)
        {
            metrics.RecordModelLoad(name, "failed");
            return Refuse(name, record, current, ex, startup);
        }

        var (candidates, maxServed) = (manifest.VersionPolicy ?? VersionPolicy.Default).Select(versions);
        var servedVersions = new SortedDictionary<int, LoadedModel>();
        var failures = new List<VersionFailure>();
        ManifestException? firstError = null;
        foreach (var version in candidates)
        {
            if (servedVersions.Count >= maxServed)
            {
                break;
            }

            var fingerprint = scan.Version(version);
            var existing = current?.Versions.GetValueOrDefault(version);
            if (!force && existing is not null && existing.Fingerprint == fingerprint)
            {
                servedVersions[version] = existing;
                continue;
            }

            if (!force && record.VersionFailures.TryGetValue(version, out var known) && known.Fingerprint == fingerprint)
            {
                // Refused before and unchanged since: not tried (nor counted) again on every poll.
                failures.Add(new VersionFailure(version, known.Reason));
                if (existing is not null)
                {
                    servedVersions[version] = existing;
                }

                continue;
            }

            try
            {
                servedVersions[version] = _loader.LoadVersion(directory, manifest, versions, version, fingerprint);
                record.VersionFailures.Remove(version);
                metrics.RecordModelLoad(name, "loaded");
            }
            catch (ManifestException ex)
            {
                firstError ??= ex;
                metrics.RecordModelLoad(name, "failed");
                record.VersionFailures[version] = (fingerprint, ex.Message);
                failures.Add(new VersionFailure(version, ex.Message));
                if (existing is not null)
                {
                    // A bad new copy of a served version changes nothing: the one loaded before keeps serving.
                    logger.LogError("Model {Model} version {Version} cannot be served; the version loaded before keeps serving: {Reason}", name, version, ex.Message);
                    servedVersions[version] = existing;
                }
                else
                {
                    logger.LogError("Model {Model} version {Version} cannot be served: {Reason}", name, version, ex.Message);
                }
            }
        }

        if (servedVersions.Count == 0)
        {
            var error = firstError is not null && candidates.Count == 1 ? firstError
                : failures.Count > 0 ? new ManifestException(displayPath, "versions", $"no version can be served; version {failures[0].Version}: {failures[0].Reason}")
                : new ManifestException(displayPath, "versionPolicy", $"selects none of the versions present ({string.Join(", ", versions)}).");
            return Refuse(name, record, current, error, startup);
        }

        record.Failure = null;
        var served = new ServedModel(name, servedVersions, versions, failures);
        var loaded = servedVersions.Values.Where(v => current is null || !current.Versions.Values.Contains(v)).Select(v => v.Version).ToList();
        registry.Set(name, served);
        if (loaded.Count > 0 || current is null || !current.ServedVersions.SequenceEqual(served.ServedVersions))
        {
            logger.LogInformation("Model {Model} serves version(s) {Versions} (newly loaded: {Loaded})", name,
                string.Join(", ", served.ServedVersions), loaded.Count == 0 ? "none" : string.Join(", ", loaded));
        }

        return new ModelLoadOutcome(failures.Count == 0 ? ModelLoadStatus.Loaded : ModelLoadStatus.PartlyLoaded,
            failures.Count == 0 ? null : string.Join("; ", failures.Select(f => $"version {f.Version}: {f.Reason}")));
    }

    /// <summary>Nothing of <paramref name="name"/> could be loaded (each refusal already counted): what is served stays served.</summary>
    private ModelLoadOutcome Refuse(string name, ModelRecord record, ServedModel? current, ManifestException error, bool startup)
    {
        if (startup)
        {
            throw error;
        }

        record.Failure = error.Message;
        if (current is not null)
        {
            // Nothing changes but the failures shown with it.
            logger.LogError("Model {Model} could not be reloaded; version(s) {Versions} keep serving: {Reason}", name, string.Join(", ", current.ServedVersions), error.Message);
            registry.Set(name, new ServedModel(name, current.Versions, current.RepositoryVersions,
                [.. record.VersionFailures.Select(f => new VersionFailure(f.Key, f.Value.Reason)).OrderByDescending(f => f.Version)]));
        }
        else
        {
            logger.LogError("Model {Model} cannot be served: {Reason}", name, error.Message);
        }

        return new ModelLoadOutcome(ModelLoadStatus.Failed, error.Message);
    }

    private IEnumerable<string> ModelFolders()
    {
        var only = options.Value.Only;
        return System.IO.Directory.EnumerateDirectories(Root)
            .Select(Path.GetFileName)
            .Where(name => File.Exists(Path.Combine(Root, name!, ModelLoader.ManifestFile)) && (only.Count == 0 || only.Contains(name!)))
            .Order(StringComparer.Ordinal)!;
    }

    /// <summary>A name that is one folder of the repository, never a path out of it.</summary>
    private static bool IsModelName(string name) =>
        name.Length > 0 && name != "." && name != ".." && name.IndexOfAny(['/', '\\', '\0']) < 0;

    private ModelRecord Record(string name)
    {
        if (!_records.TryGetValue(name, out var record))
        {
            record = new ModelRecord();
            _records[name] = record;
        }

        return record;
    }

    /// <summary>Copies what the index shows of the records, for readers outside the gate. Called under the gate.</summary>
    private void PublishViews() => _views = _records.ToDictionary(
        r => r.Key,
        r => new RecordView(r.Value.Unloaded, r.Value.Failure, [.. r.Value.VersionFailures.Select(f => new VersionFailure(f.Key, f.Value.Reason))]),
        StringComparer.Ordinal);

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

    /// <summary>What the repository remembers of a model between operations. Touched under the gate only.</summary>
    private sealed class ModelRecord
    {
        /// <summary>Unloaded on request: polling leaves it alone until it is loaded again.</summary>
        public bool Unloaded { get; set; }

        /// <summary>Why the last load served nothing new (null when it succeeded).</summary>
        public string? Failure { get; set; }

        /// <summary>The folder's fingerprint at the last load: a poll that sees the same skips the model.</summary>
        public string? LastScan { get; set; }

        public Dictionary<int, (string Fingerprint, string Reason)> VersionFailures { get; } = [];
    }

    private sealed record RecordView(bool Unloaded, string? Failure, IReadOnlyList<VersionFailure> VersionFailures);
}

/// <summary>The protocol's model states, as Triton writes them.</summary>
public static class ModelStates
{
    public const string Ready = "READY";
    public const string Unavailable = "UNAVAILABLE";
}

/// <summary>One entry of the repository index: a model, or one version of it, its state and why it is not ready.</summary>
public sealed record RepositoryIndexEntry(string Name, string? Version, string? State, string? Reason);

public enum ModelLoadStatus
{
    /// <summary>Every selected version serves.</summary>
    Loaded,

    /// <summary>Some selected versions serve; others were refused (see the reason).</summary>
    PartlyLoaded,

    /// <summary>Nothing new could be served; what was served before still is.</summary>
    Failed,

    /// <summary>No such model folder.</summary>
    NotFound,
}

/// <summary>The result of a load: its status and, unless everything loaded, the reasons.</summary>
public sealed record ModelLoadOutcome(ModelLoadStatus Status, string? Reason);

/// <summary>Loads every model of the repository before the server accepts requests (see <see cref="ModelRepository.LoadAll"/>).</summary>
public sealed class ModelRepositoryLoader(ModelRepository repository, IOptions<ModelRepositoryOptions> options, ILoggerFactory loggerFactory) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        // Before the first session: the runtime's own messages go to this log, not to stderr.
        RuntimeEnvironment.UseLogger(loggerFactory, options.Value.RuntimeLogLevel);
        repository.LoadAll(cancellationToken);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>
/// Looks at the repository every <see cref="ModelRepositoryOptions.PollIntervalSeconds"/> and applies what changed
/// (<see cref="ModelRepository.PollAsync"/>). Polling rather than file-system events: those are unreliable on
/// container volumes and network file systems. The interval is timed by the <see cref="TimeProvider"/> registered
/// under <see cref="ClockKey"/> (by default the service's own), so a test can drive polls without moving the clock
/// every other part of the service reads.
/// </summary>
public sealed class ModelRepositoryPoller(
    ModelRepository repository,
    IOptions<ModelRepositoryOptions> options,
    [FromKeyedServices(ModelRepositoryPoller.ClockKey)] TimeProvider time,
    ILogger<ModelRepositoryPoller> logger) : BackgroundService
{
    /// <summary>The service key of the clock that times polls.</summary>
    public const string ClockKey = "ModelRepository.Poll";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var seconds = options.Value.PollIntervalSeconds;
        if (seconds <= 0)
        {
            return;
        }

        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(seconds), time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await repository.PollAsync(stoppingToken);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    logger.LogWarning(ex, "Polling the model repository failed; trying again in {Seconds} s", seconds);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
