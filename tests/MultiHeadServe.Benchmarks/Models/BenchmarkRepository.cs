using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using MultiHeadServe.Onnx;

namespace MultiHeadServe.Benchmarks.Models;

/// <summary>What the service serves for one demo model during the run.</summary>
/// <param name="Model">The source model.</param>
/// <param name="MultiHead">b: the model as shipped (its own batching settings).</param>
/// <param name="Unbatched">b: the same model with batching off.</param>
/// <param name="SingleHead">c: the old way, one deployment per head (or per member file), each with its own session.</param>
internal sealed record ModelDeployments(BenchmarkModel Model, string MultiHead, string Unbatched, IReadOnlyList<SingleHeadDeployment> SingleHead);

/// <summary>One of the old single-head deployments.</summary>
/// <param name="Name">Its model name on the service.</param>
/// <param name="Heads">The heads it serves.</param>
/// <param name="Origin">How its ONNX file was made, for the report.</param>
internal sealed record SingleHeadDeployment(string Name, IReadOnlyList<string> Heads, string Origin);

/// <summary>
/// The temporary model repository of a run: copies of the demo models, the batching-off variants and the old
/// single-head deployments, each a normal model folder with its own manifest. Deleted on dispose.
/// </summary>
internal sealed class BenchmarkRepository : IDisposable
{
    private static readonly JsonSerializerOptions ManifestWriting = new() { WriteIndented = true };

    private readonly bool _keep;

    private BenchmarkRepository(string root, IReadOnlyList<ModelDeployments> models, bool keep)
    {
        Root = root;
        ModelsPath = Path.Combine(root, "models");
        Models = models;
        _keep = keep;
    }

    /// <summary>The run's scratch folder: the repository and the feature store file.</summary>
    public string Root { get; }

    /// <summary>The folder the service reads as ModelRepository:Path.</summary>
    public string ModelsPath { get; }

    public IReadOnlyList<ModelDeployments> Models { get; }

    public string FeatureStorePath => Path.Combine(Root, "features.db");

    public static BenchmarkRepository Create(IReadOnlyList<BenchmarkModel> models, bool keep)
    {
        var root = Path.Combine(Path.GetTempPath(), "mhs-benchmark-" + Guid.NewGuid().ToString("N")[..12]);
        var modelsPath = Path.Combine(root, "models");
        Directory.CreateDirectory(modelsPath);
        try
        {
            var deployments = models.Select(model => Write(model, modelsPath)).ToList();
            return new BenchmarkRepository(root, deployments, keep);
        }
        catch
        {
            Directory.Delete(root, recursive: true);
            throw;
        }
    }

    private static ModelDeployments Write(BenchmarkModel model, string modelsPath)
    {
        CopyModel(model, modelsPath, model.Name, model.ManifestCopy(), withFeatures: true);

        var unbatchedName = model.Name + "-unbatched";
        var unbatched = model.ManifestCopy();
        unbatched["batching"] ??= new JsonObject();
        unbatched["batching"]!["enabled"] = false;
        CopyModel(model, modelsPath, unbatchedName, unbatched, withFeatures: false);

        var singleHead = model.Members.Count > 0 ? WriteMemberDeployments(model, modelsPath) : WritePrunedDeployments(model, modelsPath);
        return new ModelDeployments(model, model.Name, unbatchedName, singleHead);
    }

    /// <summary>Members: each member file becomes its own deployment serving the heads that read its outputs.</summary>
    private static List<SingleHeadDeployment> WriteMemberDeployments(BenchmarkModel model, string modelsPath)
    {
        var deployments = new List<SingleHeadDeployment>();
        foreach (var member in model.Members)
        {
            var source = Path.Combine(model.VersionDirectory, member);
            var outputs = OnnxModel.Load(source).Outputs.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
            var heads = model.ServedHeads.Where(h => outputs.Contains(h.Output)).Select(h => h.Name).ToList();
            if (heads.Count == 0)
            {
                continue;
            }

            var name = DeploymentName(model.Name, Path.GetFileNameWithoutExtension(member));
            var versionDirectory = CopyModel(model, modelsPath, name, SingleHeadManifest(model, name, heads), withFeatures: false, withVersionFiles: false);
            File.Copy(source, Path.Combine(versionDirectory, "model.onnx"));
            deployments.Add(new SingleHeadDeployment(name, heads, $"member file {member}"));
        }

        return deployments;
    }

    /// <summary>One model file: one deployment per served output, the graph pruned to that output.</summary>
    private static List<SingleHeadDeployment> WritePrunedDeployments(BenchmarkModel model, string modelsPath)
    {
        var full = OnnxModel.Load(Path.Combine(model.VersionDirectory, "model.onnx"));
        var deployments = new List<SingleHeadDeployment>();
        foreach (var group in model.ServedHeads.GroupBy(h => h.Output, StringComparer.Ordinal))
        {
            var heads = group.Select(h => h.Name).ToList();
            var name = DeploymentName(model.Name, heads[0]);
            var versionDirectory = CopyModel(model, modelsPath, name, SingleHeadManifest(model, name, heads), withFeatures: false, withVersionFiles: false);
            new OnnxModel(ModelPruning.Prune(full.Proto, [group.Key])).Save(Path.Combine(versionDirectory, "model.onnx"));
            deployments.Add(new SingleHeadDeployment(name, heads, $"model.onnx pruned to '{group.Key}'"));
        }

        return deployments;
    }

    /// <summary>The model's manifest reduced to <paramref name="heads"/>: one model file, same features, same batching.</summary>
    private static JsonObject SingleHeadManifest(BenchmarkModel model, string name, IReadOnlyList<string> heads)
    {
        var manifest = model.ManifestCopy();
        manifest["members"] = null;
        var kept = (manifest["heads"]?.AsArray() ?? [])
            .Where(h => heads.Contains(h!["name"]!.GetValue<string>(), StringComparer.Ordinal))
            .Select(h => h!.DeepClone())
            .ToArray();
        manifest["heads"] = new JsonArray(kept);
        if (manifest["loss"] is JsonObject loss)
        {
            // Loss weights may only name heads the deployment has.
            foreach (var field in new[] { "weights", "logVariances" })
            {
                if (loss[field] is JsonObject perHead)
                {
                    foreach (var head in perHead.Select(p => p.Key).Where(k => !heads.Contains(k, StringComparer.Ordinal)).ToList())
                    {
                        perHead.Remove(head);
                    }
                }
            }
        }

        return manifest;
    }

    /// <summary>Writes <c>name/model.json</c>, the label files it names and, unless told not to, the served version's files.</summary>
    /// <returns>The version folder written.</returns>
    private static string CopyModel(BenchmarkModel model, string modelsPath, string name, JsonObject manifest, bool withFeatures, bool withVersionFiles = true)
    {
        var directory = Path.Combine(modelsPath, name);
        var versionDirectory = Path.Combine(directory, model.Version.ToString(CultureInfo.InvariantCulture));
        Directory.CreateDirectory(versionDirectory);
        manifest["name"] = name;
        var featuresDirectory = Path.Combine(model.Directory, "features");
        if (!withFeatures && Directory.Exists(featuresDirectory) && manifest["features"] is JsonObject features && features["seedFrom"] is null)
        {
            // The copies read the same store tables the original seeds: the old deployments fetch the same rows.
            features["seedFrom"] = model.Name;
        }

        File.WriteAllText(Path.Combine(directory, "model.json"), manifest.ToJsonString(ManifestWriting));
        // The files the manifest names beside it: head labels.
        var labels = (manifest["heads"]?.AsArray() ?? []).Select(h => h?["labels"]?.GetValue<string>()).OfType<string>().Distinct(StringComparer.Ordinal);
        foreach (var file in labels)
        {
            var target = Path.Combine(directory, file);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(Path.Combine(model.Directory, file), target);
        }

        if (withFeatures && Directory.Exists(featuresDirectory))
        {
            CopyDirectory(featuresDirectory, Path.Combine(directory, "features"));
        }

        if (withVersionFiles)
        {
            CopyDirectory(model.VersionDirectory, versionDirectory);
        }

        return versionDirectory;
    }

    private static void CopyDirectory(string source, string target)
    {
        Directory.CreateDirectory(target);
        foreach (var file in Directory.EnumerateFiles(source))
        {
            File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        }
    }

    private static string DeploymentName(string model, string part)
    {
        var suffix = new string([.. part.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '-')]);
        return $"{model}-{suffix}";
    }

    public void Dispose()
    {
        if (_keep)
        {
            return;
        }

        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp folder is not worth failing a finished run for.
        }
    }
}
