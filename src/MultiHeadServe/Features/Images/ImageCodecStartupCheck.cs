using MultiHeadServe.Models;

namespace MultiHeadServe.Features.Images;

/// <summary>
/// Stops start-up, naming what to deploy, when a model takes images and Skia's native library cannot be
/// loaded, rather than failing every image request later. Runs after the models are loaded; a service
/// without image models never loads the library.
/// </summary>
public sealed class ImageCodecStartupCheck(ModelRegistry registry, ILogger<ImageCodecStartupCheck> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var imageModels = registry.All.Where(m => m.Manifest.Features.Source == FeatureSource.Image).Select(m => m.Name).ToList();
        if (imageModels.Count > 0)
        {
            ImageDecoder.EnsureCodecLoaded();
            logger.LogInformation("Image codec: SkiaSharp, native Skia milestone {Milestone} (PNG, JPEG, WebP) for {Models}",
                SkiaSharp.SkiaSharpVersion.Native, imageModels);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
