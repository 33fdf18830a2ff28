using MultiHeadServe.Heads;
using MultiHeadServe.Heads.Losses;
using MultiHeadServe.Inference;
using MultiHeadServe.Inference.Engine;

namespace MultiHeadServe.Models;

/// <summary>
/// One served model version: its manifest, its single ONNX Runtime session (shared by every request,
/// concurrent runs are safe) and what was derived from both at load. Immutable after load.
/// </summary>
public sealed class LoadedModel : IDisposable
{
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

    /// <summary>Newer versions that could not be served, newest first, with the reason (empty when the newest serves).</summary>
    public IReadOnlyList<VersionFailure> FailedVersions { get; init; } = [];

    /// <summary>Set once the warm-up run succeeded.</summary>
    public bool Warm { get; internal set; }

    public void Dispose() => Sessions.Dispose();
}

/// <summary>A model version that could not be served, and why.</summary>
public sealed record VersionFailure(int Version, string Reason);
