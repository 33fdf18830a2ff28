using System.Buffers.Binary;
using MultiHeadServe.Features.Images;
using SkiaSharp;

namespace MultiHeadServe.Tests.Features.Images;

public sealed class JpegDecodingTests
{
    [Theory]
    [InlineData(SKJpegEncoderDownsample.Downsample444, 0x11)]
    [InlineData(SKJpegEncoderDownsample.Downsample420, 0x22)]
    public void JpegDecodesToPixelsCloseToTheSource(SKJpegEncoderDownsample subsampling, byte lumaSampling)
    {
        // Odd sizes: neither a multiple of the 8x8 block nor of the 16x16 4:2:0 macroblock.
        const int width = 37, height = 23;
        var source = TestImages.Gradient(width, height);
        var jpeg = SkiaFixture.Jpeg(width, height, source, subsampling, quality: 95);
        Assert.Equal((3, lumaSampling), SkiaFixture.Frame(jpeg));

        var image = ImageDecoder.Decode(jpeg, ImageDecodeLimits.Default);

        Assert.Equal((width, height), (image.Width, image.Height));
        var (maximum, mean) = Differences(source, image.Rgb);
        Assert.True(maximum <= 12 && mean <= 2.0, $"max |diff| {maximum}, mean |diff| {mean:F2}");
    }

    [Fact]
    public void GrayscaleJpegExpandsToEqualChannels()
    {
        const int width = 16, height = 9;
        var gray = new byte[width * height];
        for (var i = 0; i < gray.Length; i++)
        {
            gray[i] = (byte)(i % width * 16);
        }

        var jpeg = SkiaFixture.Jpeg(width, height, gray, SKJpegEncoderDownsample.Downsample444, quality: 95, gray: true);
        Assert.Equal(1, SkiaFixture.Frame(jpeg).Components);

        var image = ImageDecoder.Decode(jpeg, ImageDecodeLimits.Default);

        for (var i = 0; i < gray.Length; i++)
        {
            Assert.Equal(image.Rgb[i * 3], image.Rgb[i * 3 + 1]);
            Assert.Equal(image.Rgb[i * 3], image.Rgb[i * 3 + 2]);
            Assert.InRange(image.Rgb[i * 3] - gray[i], -8, 8);
        }
    }

    [Fact]
    public void TruncatedJpegIsRejectedRatherThanReturnedHalfGrey()
    {
        var jpeg = SkiaFixture.Jpeg(64, 64, TestImages.Gradient(64, 64), SKJpegEncoderDownsample.Downsample444, 90);

        var error = Assert.Throws<ImageDecodeException>(
            () => ImageDecoder.Decode(jpeg.AsSpan(0, jpeg.Length * 2 / 3), ImageDecodeLimits.Default));

        Assert.Equal("corrupt JPEG: the data ends before the image does (a truncated file)", error.Reason);
    }

    [Fact]
    public void JpegWithGarbageAfterTheStartMarkerIsRejectedAsCorrupt()
    {
        byte[] data = [0xFF, 0xD8, 0xFF, .. TestImages.Noise(200, seed: 4)];

        var error = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(data, ImageDecodeLimits.Default));

        Assert.StartsWith("corrupt JPEG: ", error.Reason, StringComparison.Ordinal);
        Assert.True(error.Reason.Length > "corrupt JPEG: ".Length + 3, error.Reason);
    }

    [Fact]
    public void JpegDeclaringHugeDimensionsIsRejectedBeforeAnyPixelMemoryIsAllocated()
    {
        var jpeg = SkiaFixture.Jpeg(16, 16, TestImages.Gradient(16, 16), SKJpegEncoderDownsample.Downsample444, 90);
        _ = ImageDecoder.Decode(jpeg, ImageDecodeLimits.Default);
        // SOFn: marker (2), length (2), precision (1), height (2), width (2).
        var frame = SkiaFixture.StartOfFrameOffset(jpeg);
        BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(frame + 5), 60000);
        BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(frame + 7), 50000);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(jpeg, ImageDecodeLimits.Default));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal("image 50000x60000 exceeds the limit 4096x4096", error.Reason);
        Assert.True(allocated < 256 * 1024, $"allocated {allocated} bytes");
    }

    private static (int Maximum, double Mean) Differences(byte[] expected, byte[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        var maximum = 0;
        long total = 0;
        for (var i = 0; i < expected.Length; i++)
        {
            var difference = Math.Abs(expected[i] - actual[i]);
            maximum = Math.Max(maximum, difference);
            total += difference;
        }

        return (maximum, (double)total / expected.Length);
    }
}
