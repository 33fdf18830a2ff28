using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Features.Images;

/// <summary>
/// A deployment that lost Skia's native library must not start serving image models and fail their first
/// request: the service's own build, copied without libSkiaSharp, is started as a process.
/// </summary>
public sealed class ImageCodecStartupTests
{
#if DEBUG
    private const string Configuration = "Debug";
#else
    private const string Configuration = "Release";
#endif

    [Fact]
    public async Task WithoutLibSkiaSharpTheServiceRefusesToStartNamingWhatToDeploy()
    {
        var build = Path.Combine(RepositoryPaths.Root, "src", "MultiHeadServe", "bin", Configuration, "net10.0");
        Assert.True(File.Exists(Path.Combine(build, "libSkiaSharp.so")), $"the service's build at {build} carries libSkiaSharp.so");
        using var folder = new Store.TemporaryDirectory();
        var app = Directory.CreateDirectory(Path.Combine(folder.Path, "app")).FullName;
        foreach (var file in Directory.EnumerateFiles(build).Where(f => !Path.GetFileName(f).StartsWith("libSkiaSharp", StringComparison.Ordinal)))
        {
            File.Copy(file, Path.Combine(app, Path.GetFileName(file)));
        }

        var (exitCode, output) = await ServiceProcess.RunUntilExitAsync(Path.Combine(app, "MultiHeadServe.dll"),
            new Dictionary<string, string> { ["ModelRepository__Only__0"] = "shapes" }, TimeSpan.FromSeconds(90));

        Assert.True(exitCode is not null, "the service started without libSkiaSharp:\n" + string.Join('\n', output));
        Assert.NotEqual(0, exitCode);
        var text = string.Join('\n', output);
        Assert.Contains("Image models need SkiaSharp's native library, libSkiaSharp", text, StringComparison.Ordinal);
        Assert.Contains("Deploy the application folder whole", text, StringComparison.Ordinal);
    }
}
