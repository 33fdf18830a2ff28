using System.Diagnostics;
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

        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { Path.Combine(app, "MultiHeadServe.dll"), "--urls", "http://127.0.0.1:0" },
            WorkingDirectory = app,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            Environment =
            {
                ["ASPNETCORE_ENVIRONMENT"] = "Production",
                ["ModelRepository__Path"] = RepositoryPaths.Models,
                ["ModelRepository__Only__0"] = "shapes",
                ["FeatureStore__SqlitePath"] = Path.Combine(folder.Path, "features.db"),
            },
        };
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"the service started without libSkiaSharp: {await output}");
        }

        var text = await output + await error;
        Assert.NotEqual(0, process.ExitCode);
        Assert.Contains("Image models need SkiaSharp's native library, libSkiaSharp", text, StringComparison.Ordinal);
        Assert.Contains("Deploy the application folder whole", text, StringComparison.Ordinal);
    }
}
