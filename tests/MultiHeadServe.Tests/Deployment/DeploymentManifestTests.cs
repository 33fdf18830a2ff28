using MultiHeadServe.ManifestValidation;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Deployment;

/// <summary>
/// The check deploy/validate.sh runs on the Kubernetes, Prometheus Operator and KServe manifests: the repository's
/// manifests pass it, and a copy with one mistake fails it, naming the file's line, the kind, the name and the field.
/// </summary>
public sealed class DeploymentManifestTests
{
    private static readonly ManifestValidator Validator = new(Path.Combine(RepositoryPaths.Root, "deploy", "schema"));

    private static string Manifest(string relativePath) => Path.Combine(RepositoryPaths.Root, "deploy", relativePath);

    [Fact]
    public void EveryManifestOfTheRepositoryMatchesTheSchemaOfItsKind()
    {
        var files = Directory.GetFiles(Manifest("kubernetes"), "*.yaml", SearchOption.AllDirectories)
            .Concat(Directory.GetFiles(Manifest("kserve"), "*.yaml"))
            .Where(file => !Path.GetFileName(file).StartsWith("kustomiz", StringComparison.Ordinal))
            .ToArray();

        var total = 0;
        foreach (var file in files)
        {
            var problems = Validator.Validate(File.ReadAllText(file), file, out var manifests);
            Assert.True(problems.Count == 0, string.Join('\n', problems));
            total += manifests;
        }

        // Namespace, ConfigMap, Deployment, Service, HPA, PDB, the GPU patch, PodMonitor, Secret, PVC, InferenceService.
        Assert.Equal(11, total);
    }

    [Theory]
    // A misspelt field of a built-in kind, deep in the pod template.
    [InlineData("kubernetes/base/deployment.yaml", "      terminationGracePeriodSeconds: 45", "      terminationGracePeriodSecond: 45",
        "Deployment", "spec.template.spec.terminationGracePeriodSecond", "unknown field \"terminationGracePeriodSecond\" (PodSpec has no such field; did you mean \"terminationGracePeriodSeconds\"?)")]
    // A value of the wrong type.
    [InlineData("kubernetes/base/deployment.yaml", "  revisionHistoryLimit: 5", "  replicas: \"two\"\n  revisionHistoryLimit: 5",
        "Deployment", "spec.replicas", "must be an integer, not the string \"two\"")]
    [InlineData("kubernetes/base/deployment.yaml", "              memory: 2Gi", "              memory: 2Gx",
        "Deployment", "spec.template.spec.containers[0].resources.limits.memory", "\"2Gx\" is not a quantity")]
    // An unknown field in KServe's part of the InferenceService (its JSON Schema) ...
    [InlineData("kserve/inferenceservice.yaml", "spec:\n  predictor:", "spec:\n  predicter: {}\n  predictor:",
        "InferenceService", "spec.predicter", "unknown field \"predicter\"")]
    // ... in its predictor, which is neither KServe's nor the inlined PodSpec's ...
    [InlineData("kserve/inferenceservice.yaml", "    scaleTarget: 70", "    scaleTarget: 70\n    scaleTargetPercent: 70",
        "InferenceService", "spec.predictor.scaleTargetPercent", "unknown field \"scaleTargetPercent\"")]
    // ... and in the predictor's container, checked as a Kubernetes Container.
    [InlineData("kserve/inferenceservice.yaml", "        imagePullPolicy: IfNotPresent", "        imagePullPolicy: IfNotPresent\n        imagePullSecret: registry",
        "InferenceService", "spec.predictor.containers[0].imagePullSecret", "unknown field \"imagePullSecret\"")]
    [InlineData("kserve/inferenceservice.yaml", "    minReplicas: 2", "    minReplicas: two",
        "InferenceService", "spec.predictor.minReplicas", "integer")]
    // An unknown field and a wrong value in the PodMonitor (the Prometheus Operator's CRD, as a JSON Schema).
    [InlineData("kubernetes/monitoring/podmonitor.yaml", "      interval: 15s", "      interval: 15s\n      scrapeInterval: 15s",
        "PodMonitor", "spec.podMetricsEndpoints[0].scrapeInterval", "unknown field \"scrapeInterval\"")]
    [InlineData("kubernetes/monitoring/podmonitor.yaml", "      scrapeTimeout: 10s", "      scrapeTimeout: 10 seconds",
        "PodMonitor", "spec.podMetricsEndpoints[0].scrapeTimeout", "10 seconds")]
    [InlineData("kubernetes/monitoring/podmonitor.yaml", "  name: multiheadserve", "  name: multiheadserve\n  namespaces: monitoring",
        "PodMonitor", "metadata.namespaces", "unknown field \"namespaces\" (ObjectMeta has no such field; did you mean \"namespace\"?)")]
    public void AManifestWithOneMistakeFailsNamingItsKindNameAndField(string file, string original, string replacement, string kind, string path, string message)
    {
        var text = File.ReadAllText(Manifest(file));
        Assert.Contains(original, text, StringComparison.Ordinal);
        var broken = text.Replace(original, replacement, StringComparison.Ordinal);
        // The line the mistake is on: the replacement's line that the original does not have.
        var mistake = replacement.Split('\n').First(line => !original.Split('\n').Contains(line));
        var changedLine = Array.IndexOf(broken.Split('\n'), mistake) + 1;

        var problems = Validator.Validate(broken, file, out _);

        var problem = Assert.Single(problems);
        Assert.Equal((file, kind, "multiheadserve", path), (problem.Source, problem.Kind, problem.Name, problem.Path));
        Assert.Contains(message, problem.Message, StringComparison.Ordinal);
        Assert.Equal(changedLine, problem.Line);
        Assert.StartsWith($"{file}:{changedLine}: {kind}/multiheadserve: {path}: ", problem.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void AKindWithoutASchemaAndTextThatIsNotYamlAreProblemsToo()
    {
        var unknownKind = Validator.Validate("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n", "widget.yaml", out _);
        Assert.Contains("no schema for example.com/v1 Widget", Assert.Single(unknownKind).Message, StringComparison.Ordinal);

        var notYaml = Validator.Validate("apiVersion: v1\nkind: [ConfigMap\n", "broken.yaml", out _);
        Assert.StartsWith("not YAML", Assert.Single(notYaml).Message, StringComparison.Ordinal);
    }
}
