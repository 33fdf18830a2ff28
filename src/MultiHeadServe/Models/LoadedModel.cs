using MultiHeadServe.Heads;
using MultiHeadServe.Heads.Losses;
using MultiHeadServe.Inference;
using MultiHeadServe.Inference.Engine;

namespace MultiHeadServe.Models;

/// <summary>
/// One served model version: its manifest, its single ONNX Runtime session (shared by every request,
/// concurrent runs are safe) and what was derived from both at load. Immutable after load.
/// <para>
/// Lifetime: the registry holds one reference and every admitted request one more (<see cref="TryAcquire"/> /
/// <see cref="Release"/>). <see cref="Retire"/> gives up the registry's reference when a reload replaces or an
/// unload removes the version; the sessions and what was attached to them (the version's batcher) are disposed
/// when the last request holding the version has finished, so a request always ends on the version it began with.
/// </para>
/// </summary>
public sealed class LoadedModel : IDisposable
{
    private readonly List<IDisposable> _companions = [];
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _references = 1;
    private int _retired;

    public LoadedModel(string name, int version, string directory, ModelManifest manifest, HeadSubsetSessions sessions,
        IReadOnlyDictionary<string, IReadOnlyList<string>> labels, IReadOnlyList<int> availableVersions,
        IReadOnlyDictionary<string, HeadDecoder> decoders, MultiTaskEvaluator evaluator)
    {
        Decoders = decoders;
        Evaluator = evaluator;
        Name = name;
        Version = version;
        Directory = directory;
        Manifest = manifest;
        Sessions = sessions;
        var session = sessions.Full;
        Labels = labels;
        AvailableVersions = availableVersions;
        FeatureInput = session.Inputs.Single(i => i.Name == manifest.Features.Input);
        RowShape = FeatureInput.Shape.Skip(1).ToArray();
        RowLength = (int)RowShape.Aggregate(1L, (a, d) => a * d);
        Heads = manifest.Heads.ToDictionary(h => h.Name, StringComparer.Ordinal);
        ServedHeads = manifest.Heads.Where(h => h.Served).ToList();
        ServedHeadsLabel = string.Join('+', ServedHeads.Select(h => h.Name));
        ServedHeadNames = [.. ServedHeads.Select(h => h.Name)];
        ServedOutputs = [.. ServedHeads.Select(h => h.Output).Distinct(StringComparer.Ordinal)];
    }

    public string Name { get; }

    public int Version { get; }

    /// <summary>The model's folder (holds model.json, labels, version folders).</summary>
    public string Directory { get; }

    public ModelManifest Manifest { get; }

    /// <summary>The session over the whole graph: its inputs and outputs describe the model.</summary>
    public ModelSession Session => Sessions.Full;

    /// <summary>The full session and the sessions pruned to head subsets; the runner picks one per run.</summary>
    public HeadSubsetSessions Sessions { get; }

    /// <summary>Labels per head name, for heads that have a labels file.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Labels { get; }

    /// <summary>The version folders present when this version was loaded.</summary>
    public IReadOnlyList<int> AvailableVersions { get; }

    /// <summary>The graph input the feature tensor feeds.</summary>
    public TensorMetadata FeatureInput { get; }

    /// <summary>The feature input's shape without the batch dimension (e.g. [3, 64, 64] or [12]).</summary>
    public IReadOnlyList<long> RowShape { get; }

    /// <summary>Floats per row of the feature tensor.</summary>
    public int RowLength { get; }

    public IReadOnlyDictionary<string, HeadSpec> Heads { get; }

    /// <summary>Heads clients may ask for (manifest order); the others exist for evaluation only.</summary>
    public IReadOnlyList<HeadSpec> ServedHeads { get; }

    /// <summary>Every served head's name joined by '+': the metric label of a request for all of them, built once.</summary>
    public string ServedHeadsLabel { get; }

    /// <summary>The served heads' names, in manifest order (what a request for every head reports).</summary>
    public IReadOnlyList<string> ServedHeadNames { get; }

    /// <summary>The graph outputs the served heads read, each once: what a request for every head runs.</summary>
    public IReadOnlyList<string> ServedOutputs { get; }

    /// <summary>One decoder per head, built and validated at load.</summary>
    public IReadOnlyDictionary<string, HeadDecoder> Decoders { get; }

    /// <summary>Per-head losses and their combination for /evaluate, built and validated at load.</summary>
    public MultiTaskEvaluator Evaluator { get; }

    /// <summary>The model's input image size (image models), for boxes the model emits in pixels.</summary>
    public ImageSize? InputImageSize => Manifest.Features.Image is { } image ? new ImageSize(image.Width, image.Height) : null;

    /// <summary>What this version has served since it was loaded (Triton's statistics extension).</summary>
    public ModelStatistics Statistics { get; } = new();

    /// <summary>Set once the warm-up run succeeded.</summary>
    public bool Warm { get; internal set; }

    /// <summary>What the repository saw of the version's files when it loaded them (a change is reloaded).</summary>
    internal string Fingerprint { get; init; } = "";

    /// <summary>True once the version was replaced or removed: new requests go elsewhere.</summary>
    public bool Retired => Volatile.Read(ref _retired) != 0;

    /// <summary>Completes when the retired version's last request has finished and its sessions are disposed.</summary>
    public Task Drained => _drained.Task;

    /// <summary>Holds the version for one request; false once it is retired and drained (look it up again).</summary>
    public bool TryAcquire() => ReferenceCount.TryAcquire(ref _references);

    /// <summary>Ends a hold taken with <see cref="TryAcquire"/>; the last one of a retired version disposes it.</summary>
    public void Release()
    {
        if (Interlocked.Decrement(ref _references) != 0)
        {
            return;
        }

        List<IDisposable> companions;
        lock (_companions)
        {
            companions = [.. _companions];
            _companions.Clear();
        }

        try
        {
            // The batcher first: its queue is empty (every request it served held the version) and its workers stop.
            foreach (var companion in companions)
            {
                companion.Dispose();
            }

            Sessions.Dispose();
        }
        finally
        {
            _drained.TrySetResult();
        }
    }

    /// <summary>
    /// Disposes <paramref name="companion"/> with the version's sessions. The caller holds the version, so it is not
    /// drained yet.
    /// </summary>
    internal void Attach(IDisposable companion)
    {
        lock (_companions)
        {
            _companions.Add(companion);
        }
    }

    /// <summary>Gives up the registry's reference: disposal follows when the requests holding the version finish. Idempotent.</summary>
    public void Retire()
    {
        if (Interlocked.Exchange(ref _retired, 1) == 0)
        {
            Release();
        }
    }

    public void Dispose() => Retire();
}

/// <summary>A model version that could not be served, and why.</summary>
public sealed record VersionFailure(int Version, string Reason);
