using System.Reflection;

namespace MultiHeadServe.Onnx.Tests;

/// <summary>
/// The files of the pretrained ResNet-18 backbone (NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18,
/// restored by this project's PackageDownload) and of the objects demo model.
/// </summary>
internal static class PretrainedBackbone
{
    public const string Input = "Input247";
    public const string Output = "Pooling395_Output_0";
    public const string FeatureMap = "ReLU393_Output_0";

    private static readonly string PackageFolder = Path.Combine(
        typeof(PretrainedBackbone).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(attribute => attribute.Key == "NuGetPackageRoot")?.Value ?? string.Empty,
        "microsoft.ml.dnnimagefeaturizer.resnet18", "0.23.1", "tools", "DnnImageModels");

    public static string ResNet18 { get; } = Path.Combine(PackageFolder, "ResNet18Onnx", "ResNet18.onnx");

    public static string Preprocess { get; } = Path.Combine(PackageFolder, "ResNetPrepOnnx", "ResNetPreprocess.onnx");

    public static bool Available => File.Exists(ResNet18) && File.Exists(Preprocess);

    public static string ObjectsVersionFolder { get; } = Path.Combine(RepositoryRoot(), "models", "objects", "1");

    internal static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "MultiHeadServe.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("MultiHeadServe.sln not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>A test that needs the restored ResNet-18 package; skipped, with the reason, when it is not there.</summary>
internal sealed class ResNetFactAttribute : FactAttribute
{
    public ResNetFactAttribute()
    {
        if (!PretrainedBackbone.Available)
        {
            Skip = $"The ResNet-18 package is not restored ({PretrainedBackbone.ResNet18} is missing).";
        }
    }
}
