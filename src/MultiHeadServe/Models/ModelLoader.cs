using System.Globalization;
using System.Text.Json;
using MultiHeadServe.Heads;
using MultiHeadServe.Heads.Losses;
using MultiHeadServe.Inference;
using MultiHeadServe.Inference.Engine;
using MultiHeadServe.Onnx;

namespace MultiHeadServe.Models;

/// <summary>
/// Reads a model folder (Triton's layout: model.json, numeric version folders) and loads a version of it: creates
/// its one session, validates the manifest against the session's real metadata and warms it up. Which versions are
/// loaded, and when, is <see cref="ModelRepository"/>'s decision. Not thread-safe: the repository calls it under its lock.
/// </summary>
public sealed class ModelLoader(ModelRepositoryOptions options, ProcessMemory memory, ILogger<ModelLoader> logger)
{
    private bool _fallbackReported;

    public const string ManifestFile = "model.json";

    /// <summary>The most intra-op threads a manifest may ask for (as the service option allows).</summary>
    public const int MaxIntraOpThreads = 256;

    /// <summary>Reads and checks the manifest of the model in <paramref name="directory"/> (named after the folder).</summary>
    /// <exception cref="ManifestException">The manifest is missing, not valid JSON, or names another model, or its version policy is malformed.</exception>
    public static ModelManifest ReadManifest(string directory)
    {
        var displayPath = DisplayPath(directory);
        var manifest = ReadManifest(Path.Combine(directory, ManifestFile), displayPath);
        var name = Path.GetFileName(directory);
        if (manifest.Name != name)
        {
            throw new ManifestException(displayPath, "name", $"'{manifest.Name}' must equal the folder name '{name}'.");
        }

        if (manifest.VersionPolicy?.Problem() is { } policyProblem)
        {
            throw new ManifestException(displayPath, "versionPolicy", policyProblem);
        }

        return manifest;
    }

    /// <summary>The numeric version folders of the model in <paramref name="directory"/>, ascending.</summary>
    public static IReadOnlyList<int> VersionsOf(string directory) => System.IO.Directory.EnumerateDirectories(directory)
        .Select(d => int.TryParse(Path.GetFileName(d), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : -1)
        .Where(v => v > 0)
        .Order()
        .ToList();

    /// <summary>"name/model.json": how errors name a model's manifest.</summary>
    public static string DisplayPath(string directory) => Path.Combine(Path.GetFileName(directory), ManifestFile);

    /// <summary>
    /// Loads one version: creates its session, validates <paramref name="manifest"/> against the graph, builds the
    /// decoders and warms it up. Nothing is left open when it fails.
    /// </summary>
    /// <exception cref="ManifestException">The version cannot be served (corrupt file, manifest mismatch, failed warm-up).</exception>
    public LoadedModel LoadVersion(string directory, ModelManifest manifest, IReadOnlyList<int> versions, int version, string fingerprint)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        return LoadVersion(directory, Path.GetFileName(directory), manifest, DisplayPath(directory), versions, version, fingerprint);
    }

    private LoadedModel LoadVersion(
        string directory, string name, ModelManifest manifest, string displayPath, IReadOnlyList<int> versions, int version, string fingerprint)
    {
        var versionDirectory = Path.Combine(directory, version.ToString(CultureInfo.InvariantCulture));
        var (session, graph, settings) = CreateSession(manifest, versionDirectory, displayPath, () => fingerprint == ModelFolderFingerprint.Of(directory).Version(version));
        HeadSubsetSessions? sessions = null;
        try
        {
            ManifestValidator.Validate(manifest, session, displayPath);
            var labels = ReadLabels(manifest, directory, displayPath);
            var decoders = CreateDecoders(manifest, session, labels, displayPath);
            var evaluator = CreateEvaluator(manifest, labels, displayPath);
            var featureInput = session.Inputs.Single(i => i.Name == manifest.Features.Input);
            sessions = new HeadSubsetSessions(
                session, graph, settings, featureInput.Name, [.. featureInput.Shape.Skip(1)], logger, model: $"{name} version {version}");
            var model = new LoadedModel(name, version, directory, manifest, sessions, labels, versions, decoders, evaluator) { Fingerprint = fingerprint };
            try
            {
                WarmUp(model);
            }
            catch (Exception ex) when (ex is InferenceEngineException or ArgumentException)
            {
                throw new ManifestException(displayPath, "(model)", $"version {version} failed its warm-up run: {ex.Message}");
            }

            if (session.ProviderFallbackReason is not null)
            {
                // One warning per process: every model falls back for the same reason.
                if (!_fallbackReported)
                {
                    logger.LogWarning("Execution provider Auto: CUDA is not usable, models run on CPU: {Reason}", session.ProviderFallbackReason);
                    _fallbackReported = true;
                }
                else
                {
                    logger.LogDebug("Model {Model} also runs on CPU: {Reason}", name, session.ProviderFallbackReason);
                }
            }

            logger.LogInformation("Loaded model {Model} version {Version} on {Provider}: inputs {Inputs}, heads {Heads}",
                name, version, session.ExecutionProvider, string.Join(", ", session.Inputs.Select(i => i.Name)),
                string.Join(", ", manifest.Heads.Select(h => h.Name)));
            return model;
        }
        catch
        {
            if (sessions is null)
            {
                session.Dispose();
            }
            else
            {
                sessions.Dispose();
            }

            throw;
        }
    }

    private static ModelManifest ReadManifest(string path, string displayPath)
    {
        if (!File.Exists(path))
        {
            throw new ManifestException(displayPath, "(file)", "the manifest is missing.");
        }

        try
        {
            using var stream = File.OpenRead(path);
            return JsonSerializer.Deserialize<ModelManifest>(stream, ManifestJson.Options)
                ?? throw new ManifestException(displayPath, "(root)", "the manifest is empty.");
        }
        catch (JsonException ex)
        {
            var field = ex.Path is { Length: > 2 } jsonPath && jsonPath.StartsWith("$.", StringComparison.Ordinal) ? jsonPath[2..] : ex.Path ?? "(root)";
            throw new ManifestException(displayPath, field, ex.Message);
        }
    }

    /// <summary>
    /// The model's session, the graph it was made from (for pruned head subsets) and the settings used. The graph is
    /// read again, and fused again, when a subset first asks for it, not kept: it is as large as the model's weights
    /// (about 65 MB for a ResNet-18 backbone with its heads) and most models are never asked for a subset. It is read
    /// only while <paramref name="unchanged"/> holds: a pruned session must compute what the version's full one does.
    /// </summary>
    private (ModelSession Session, PrunableGraph Graph, SessionSettings Settings) CreateSession(
        ModelManifest manifest, string versionDirectory, string displayPath, Func<bool> unchanged)
    {
        if (manifest.IntraOpThreads is < 0 or > MaxIntraOpThreads)
        {
            throw new ManifestException(displayPath, "intraOpThreads", $"{manifest.IntraOpThreads} is not between 0 (one per core) and {MaxIntraOpThreads}.");
        }

        // Reading a graph again to prune it is as rare as a load, and leaves as much garbage.
        Action afterRead = memory.ReturnSoon;
        var settings = new SessionSettings
        {
            Provider = ProviderFor(manifest, displayPath),
            CudaDeviceId = options.CudaDeviceId,
            IntraOpThreads = manifest.IntraOpThreads ?? options.IntraOpThreads,
            GraphOptimizationLevel = options.GraphOptimizationLevel,
            SharedCpuArena = options.SharedCpuArena,
        };
        try
        {
            if (manifest.Members is { Count: > 0 } members)
            {
                // Members that embed the same frozen backbone compute it once in the fused graph.
                Onnx.Proto.ModelProto Fuse() => ModelFusion.Fuse(
                    members.Select((file, i) =>
                    {
                        var path = Path.Combine(versionDirectory, file);
                        if (!File.Exists(path))
                        {
                            throw new ManifestException(displayPath, $"members[{i}]", $"'{file}' does not exist in {Path.GetFileName(versionDirectory)}/.");
                        }

                        return (Path.GetFileNameWithoutExtension(file), OnnxModel.Load(path).Proto);
                    }).ToList(),
                    new FuseOptions { DeduplicateComputation = true });

                var fused = Fuse();
                var plan = fused.Graph.Output.Count <= PruningPlan.MaxOutputs ? PruningPlan.Of(fused) : null;
                return (ModelSession.FromBytes(new OnnxModel(fused).ToBytes(), settings), new PrunableGraph(() => Unchanged(Fuse), plan, afterRead), settings);
            }

            var modelPath = Path.Combine(versionDirectory, "model.onnx");
            if (!File.Exists(modelPath))
            {
                throw new ManifestException(displayPath, "members", $"no model.onnx in {Path.GetFileName(versionDirectory)}/ and no members listed.");
            }

            // The session from the file (the runtime resolves external weights beside it).
            return (ModelSession.FromFile(modelPath, settings), new PrunableGraph(() => Unchanged(() => OnnxModel.Load(modelPath).Proto), AfterRead: afterRead), settings);
        }
        catch (OnnxModelException ex)
        {
            throw new ManifestException(displayPath, "members", ex.Message);
        }
        catch (InferenceEngineException ex)
        {
            throw new ManifestException(displayPath, "(model)", $"ONNX Runtime cannot load the model: {ex.Message}");
        }
        catch (ExecutionProviderUnavailableException ex)
        {
            throw new ManifestException(displayPath, "provider", ex.Message);
        }

        Onnx.Proto.ModelProto Unchanged(Func<Onnx.Proto.ModelProto> read) => unchanged()
            ? read()
            : throw new InvalidOperationException($"the files of {Path.GetFileName(versionDirectory)}/ changed since it was loaded (the next reload serves them)");
    }

    private ExecutionProvider ProviderFor(ModelManifest manifest, string displayPath) => manifest.Provider?.ToLowerInvariant() switch
    {
        null => options.Provider,
        "auto" => ExecutionProvider.Auto,
        "cpu" => ExecutionProvider.Cpu,
        "cuda" => ExecutionProvider.Cuda,
        _ => throw new ManifestException(displayPath, "provider", $"'{manifest.Provider}' is not one of auto, cpu, cuda."),
    };

    private static Dictionary<string, IReadOnlyList<string>> ReadLabels(ModelManifest manifest, string directory, string displayPath)
    {
        var labels = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        for (var i = 0; i < manifest.Heads.Count; i++)
        {
            var head = manifest.Heads[i];
            if (head.Labels is null)
            {
                continue;
            }

            var path = Path.Combine(directory, head.Labels);
            if (!File.Exists(path))
            {
                throw new ManifestException(displayPath, $"heads[{i}].labels", $"'{head.Labels}' does not exist.");
            }

            labels[head.Name] = File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
        }

        return labels;
    }

    private static Dictionary<string, HeadDecoder> CreateDecoders(ModelManifest manifest, ModelSession session,
        IReadOnlyDictionary<string, IReadOnlyList<string>> labels, string displayPath)
    {
        var decoders = new Dictionary<string, HeadDecoder>(StringComparer.Ordinal);
        for (var i = 0; i < manifest.Heads.Count; i++)
        {
            var head = manifest.Heads[i];
            var output = session.Outputs.Single(o => o.Name == head.Output);
            // A dynamic dimension after the batch leaves the width to be checked on the first run.
            int? width = output.Shape.Skip(1).Any(d => d <= 0) ? null : (int)output.Shape.Skip(1).Aggregate(1L, (a, d) => a * d);
            try
            {
                decoders[head.Name] = HeadDecoder.Create(head, labels.GetValueOrDefault(head.Name), width);
            }
            catch (HeadSpecException ex)
            {
                throw new ManifestException(displayPath, $"heads[{i}]", ex.Message);
            }
        }

        return decoders;
    }

    private static MultiTaskEvaluator CreateEvaluator(ModelManifest manifest, IReadOnlyDictionary<string, IReadOnlyList<string>> labels, string displayPath)
    {
        try
        {
            return MultiTaskEvaluator.Create(manifest.Heads, manifest.Loss, labels);
        }
        catch (HeadSpecException ex)
        {
            throw new ManifestException(displayPath, "heads", ex.Message);
        }
        catch (LossSpecException ex)
        {
            throw new ManifestException(displayPath, "loss", ex.Message);
        }
    }

    /// <summary>One run at batch 1 and one at the largest batch: allocations and kernels are ready before the first request.</summary>
    private static void WarmUp(LoadedModel model)
    {
        var batches = model.FeatureInput.HasDynamicBatch ? new[] { 1, Math.Max(1, model.Manifest.Batching.MaxBatchSize) } : [1];
        foreach (var rows in batches.Distinct())
        {
            var shape = new long[model.RowShape.Count + 1];
            shape[0] = rows;
            for (var d = 0; d < model.RowShape.Count; d++)
            {
                shape[d + 1] = model.RowShape[d];
            }

            _ = model.Session.Run(model.FeatureInput.Name, new float[rows * model.RowLength], shape,
                [.. model.Session.Outputs.Where(o => o.ElementType == TensorElementType.Float32).Select(o => o.Name)], CancellationToken.None);
        }

        model.Warm = true;
    }
}
