using MultiHeadServe.Features.Images;

namespace MultiHeadServe.Tests.Features.Images;

public sealed class ImageTensorWriterTests
{
    // 2x2 RGB, rows top to bottom: (50,60,80) (12,24,35) / (0,0,0) (255,255,255).
    private static readonly DecodedImage Small = new(2, 2, [50, 60, 80, 12, 24, 35, 0, 0, 0, 255, 255, 255]);

    [Fact]
    public void NchwWritesOnePlanePerChannelWithMeanAndStdApplied()
    {
        var spec = Spec(2, 2, "nchw", "none", scale: 1f, mean: [10, 20, 30], std: [2, 4, 5]);
        var tensor = new float[12];

        ImageTensorWriter.Write(Small, spec, tensor);

        // (pixel - mean) / std, worked by hand: R plane, G plane, B plane.
        Assert.Equal([20f, 1f, -5f, 122.5f, 10f, 1f, -5f, 58.75f, 10f, 1f, -6f, 45f], tensor);
    }

    [Fact]
    public void NhwcWritesChannelsInterleavedPerPixel()
    {
        var spec = Spec(2, 2, "nhwc", "none", scale: 1f, mean: [10, 20, 30], std: [2, 4, 5]);
        var tensor = new float[12];

        ImageTensorWriter.Write(Small, spec, tensor);

        Assert.Equal([20f, 10f, 10f, 1f, 1f, 1f, -5f, -5f, -6f, 122.5f, 58.75f, 45f], tensor);
    }

    [Fact]
    public void ScaleIsAppliedBeforeMeanAndStd()
    {
        // The shapes model's manifest: scale 1/255, mean 0.5, std 0.5, so 0 -> -1 and 255 -> 1.
        var spec = Spec(2, 2, "nchw", "bilinear", scale: 1f / 255f, mean: [0.5f, 0.5f, 0.5f], std: [0.5f, 0.5f, 0.5f]);
        var tensor = new float[12];

        ImageTensorWriter.Write(Small, spec, tensor);

        Assert.Equal(-1f, tensor[2]);
        Assert.Equal(1f, tensor[3], 6);
        Assert.Equal((50f / 255f - 0.5f) / 0.5f, tensor[0], 6);
        Assert.Equal((24f / 255f - 0.5f) / 0.5f, tensor[5], 6);
    }

    [Fact]
    public void BilinearEnlargementUsesHalfPixelCentres()
    {
        // Red holds [[0, 100], [200, 40]]; blue is constant, so weights must sum to one.
        var image = new DecodedImage(2, 2, [0, 0, 7, 100, 0, 7, 200, 0, 7, 40, 0, 7]);
        var spec = Spec(4, 4, "nchw", "bilinear", scale: 1f, mean: [0, 0, 0], std: [1, 1, 1]);
        var tensor = new float[3 * 16];

        ImageTensorWriter.Write(image, spec, tensor);

        // Output x = 0..3 samples source x = max(0, (x + 0.5) / 2 - 0.5) = 0, 0.25, 0.75, 1.25 (clamped to 1).
        float[] red =
        [
            0f, 25f, 75f, 100f,
            50f, 58.75f, 76.25f, 85f,
            150f, 126.25f, 78.75f, 55f,
            200f, 160f, 80f, 40f,
        ];
        AssertClose(red, tensor.AsSpan(0, 16));
        AssertClose([.. Enumerable.Repeat(7f, 16)], tensor.AsSpan(32, 16));
    }

    [Fact]
    public void BilinearHalvingAveragesEachTwoByTwoBlock()
    {
        // Source x = (x + 0.5) * 2 - 0.5 = 0.5, 2.5: exactly between two pixels in each direction.
        var gray = new byte[]
        {
            0, 10, 20, 30,
            40, 50, 60, 70,
            80, 90, 100, 110,
            120, 130, 140, 250,
        };
        var image = new DecodedImage(4, 4, [.. gray.SelectMany(value => new[] { value, value, value })]);
        var spec = Spec(2, 2, "nhwc", "bilinear", scale: 1f, mean: [0, 0, 0], std: [1, 1, 1]);
        var tensor = new float[12];

        ImageTensorWriter.Write(image, spec, tensor);

        AssertClose([25f, 25f, 25f, 45f, 45f, 45f, 105f, 105f, 105f, 150f, 150f, 150f], tensor);
    }

    [Fact]
    public void BilinearShrinkingByANonIntegerFactorWeighsTheNearerPixelMore()
    {
        // 3 -> 2 columns: source x = (x + 0.5) * 1.5 - 0.5 = 0.25, 1.75.
        var image = new DecodedImage(3, 1, [0, 0, 0, 100, 0, 0, 200, 0, 0]);
        var spec = Spec(2, 1, "nchw", "bilinear", scale: 1f, mean: [0, 0, 0], std: [1, 1, 1]);
        var tensor = new float[6];

        ImageTensorWriter.Write(image, spec, tensor);

        AssertClose([25f, 175f, 0f, 0f, 0f, 0f], tensor);
    }

    [Fact]
    public void ResizeNoneRejectsAnImageOfAnotherSize()
    {
        var image = new DecodedImage(80, 60, new byte[80 * 60 * 3]);
        var spec = Spec(64, 64, "nchw", "none", scale: 1f, mean: [0, 0, 0], std: [1, 1, 1]);

        var error = Assert.Throws<ImageDecodeException>(() => ImageTensorWriter.Write(image, spec, new float[3 * 64 * 64]));

        Assert.Equal("image is 80x60; this model takes 64x64", error.Reason);
    }

    [Fact]
    public void GrayscaleUsesLumaAndKeepsGrayExact()
    {
        // Pure red, green and blue give PIL's convert("L") values 76, 150, 29; gray 77 stays 77.
        var image = new DecodedImage(2, 2, [255, 0, 0, 0, 255, 0, 0, 0, 255, 77, 77, 77]);
        var spec = Spec(2, 2, "nchw", "none", scale: 1f, mean: [0], std: [1], channels: 1);
        var tensor = new float[4];

        ImageTensorWriter.Write(image, spec, tensor);

        Assert.Equal([76f, 150f, 29f, 77f], tensor);
    }

    [Fact]
    public void DecodedPngBecomesTheTensorATrainingPipelineWouldBuild()
    {
        const int width = 6, height = 5;
        var pixels = TestImages.Noise(width * height * 3, seed: 10);
        var png = PngFixture.Write(width, height, PngFixture.ColorTypeRgb, pixels);
        float[] mean = [0.485f, 0.456f, 0.406f], std = [0.229f, 0.224f, 0.225f];
        var spec = Spec(width, height, "nchw", "bilinear", scale: 1f / 255f, mean, std);
        var tensor = new float[spec.TensorLength];

        ImageTensorWriter.Write(ImageDecoder.Decode(png, ImageDecodeLimits.Default), spec, tensor);

        // Same size: no resampling, so every value is exactly the manifest's formula.
        for (var c = 0; c < 3; c++)
        {
            for (var pixel = 0; pixel < width * height; pixel++)
            {
                var expected = (pixels[pixel * 3 + c] * (1f / 255f) - mean[c]) / std[c];
                Assert.Equal(expected, tensor[c * width * height + pixel]);
            }
        }
    }

    [Fact]
    public void DestinationOfTheWrongLengthIsRejected()
    {
        var spec = Spec(2, 2, "nchw", "none", scale: 1f, mean: [0, 0, 0], std: [1, 1, 1]);

        var error = Assert.Throws<ArgumentException>(() => ImageTensorWriter.Write(Small, spec, new float[13]));

        Assert.Equal("destination", error.ParamName);
    }

    [Fact]
    public void InvalidSpecificationsNameTheManifestField()
    {
        var valid = Spec(8, 8, "nchw", "bilinear", scale: 1f / 255f, mean: [0.5f, 0.5f, 0.5f], std: [0.5f, 0.5f, 0.5f]);
        valid.Validate();

        (ImagePreprocessing Spec, string Field)[] cases =
        [
            (valid with { Width = 0 }, "width"),
            (valid with { Height = -1 }, "height"),
            (valid with { Channels = 4 }, "channels"),
            (valid with { Layout = "NCHW" }, "layout"),
            (valid with { Resize = "bicubic" }, "resize"),
            (valid with { Scale = 0f }, "scale"),
            (valid with { Mean = [0.5f, 0.5f] }, "mean"),
            (valid with { Std = [0.5f, 0f, 0.5f] }, "std"),
            (valid with { Std = [0.5f, float.NaN, 0.5f] }, "std"),
        ];

        foreach (var (spec, field) in cases)
        {
            var error = Assert.Throws<ArgumentException>(spec.Validate);
            Assert.Equal(field, error.ParamName);
        }
    }

    private static ImagePreprocessing Spec(
        int width, int height, string layout, string resize, float scale, float[] mean, float[] std, int channels = 3) =>
        new(width, height, channels, layout, resize, scale, mean, std);

    private static void AssertClose(float[] expected, ReadOnlySpan<float> actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) < 1e-4f, $"[{i}]: expected {expected[i]}, got {actual[i]}");
        }
    }
}
