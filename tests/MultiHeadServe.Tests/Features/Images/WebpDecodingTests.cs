using MultiHeadServe.Features.Images;

namespace MultiHeadServe.Tests.Features.Images;

public sealed class WebpDecodingTests
{
    [Fact]
    public void LosslessWebpDecodesToTheExactPixels()
    {
        var pixels = TestImages.Noise(7 * 5 * 3, seed: 11);
        var webp = SkiaFixture.Webp(7, 5, pixels, 3, lossless: true);
        Assert.Equal("VP8L"u8.ToArray(), webp[12..16]);

        var image = ImageDecoder.Decode(webp, ImageDecodeLimits.Default);

        Assert.Equal((7, 5), (image.Width, image.Height));
        Assert.Equal(pixels, image.Rgb);
    }

    [Fact]
    public void LossyWebpDecodesToPixelsCloseToTheSource()
    {
        const int width = 37, height = 23;
        var source = TestImages.Gradient(width, height);
        var webp = SkiaFixture.Webp(width, height, source, 3, lossless: false, quality: 95);
        Assert.Equal("VP8 "u8.ToArray(), webp[12..16]);

        var image = ImageDecoder.Decode(webp, ImageDecodeLimits.Default);

        Assert.Equal((width, height), (image.Width, image.Height));
        var differences = source.Zip(image.Rgb, (a, b) => Math.Abs(a - b)).ToList();
        Assert.True(differences.Max() <= 16 && differences.Average() <= 2.5, $"max |diff| {differences.Max()}, mean |diff| {differences.Average():F2}");
    }

    [Fact]
    public void WebpWithAlphaDropsAlphaAndKeepsTheStoredColour()
    {
        // Opaque and translucent pixels, losslessly stored: the colour survives as stored.
        byte[] rgba =
        [
            10, 20, 30, 255,   200, 100, 50, 128,
            1, 2, 3, 7,        255, 255, 255, 1,
        ];
        var webp = SkiaFixture.Webp(2, 2, rgba, 4, lossless: true);

        var image = ImageDecoder.Decode(webp, ImageDecodeLimits.Default);

        Assert.Equal([10, 20, 30, 200, 100, 50, 1, 2, 3, 255, 255, 255], image.Rgb);
    }

    [Fact]
    public void TruncatedWebpIsRejectedAsCorrupt()
    {
        var webp = SkiaFixture.Webp(32, 32, TestImages.Noise(32 * 32 * 3, seed: 12), 3, lossless: true);

        var error = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(webp.AsSpan(0, webp.Length / 2), ImageDecodeLimits.Default));

        Assert.StartsWith("corrupt WebP: ", error.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void WebpLargerThanTheLimitsIsRejected()
    {
        var limits = new ImageDecodeLimits { MaxWidth = 8, MaxHeight = 4 };
        var tooWide = SkiaFixture.Webp(9, 4, new byte[9 * 4 * 3], 3, lossless: true);

        var error = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(tooWide, limits));

        Assert.Equal("image 9x4 exceeds the limit 8x4", error.Reason);
    }
}
