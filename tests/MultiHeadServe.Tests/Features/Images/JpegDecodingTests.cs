using System.Buffers.Binary;
using MultiHeadServe.Features.Images;

namespace MultiHeadServe.Tests.Features.Images;

public sealed class JpegDecodingTests
{
    [Theory]
    [InlineData(JpegFixture.Subsampling444)]
    [InlineData(JpegFixture.Subsampling420)]
    public void JpegDecodesToPixelsCloseToTheSource(int subsampling)
    {
        // Odd sizes: neither a multiple of the 8x8 block nor of the 16x16 4:2:0 macroblock.
        const int width = 37, height = 23;
        var source = TestImages.Gradient(width, height);
        var jpeg = JpegFixture.Compress(width, height, source, JpegFixture.PixelFormatRgb, subsampling, quality: 95);

        var image = ImageDecoder.Decode(jpeg, ImageDecodeLimits.Default);

        Assert.Equal((width, height), (image.Width, image.Height));
        var (maximum, mean) = Differences(source, image.Rgb);
        Assert.True(maximum <= 12 && mean <= 2.0, $"max |diff| {maximum}, mean |diff| {mean:F2}");
    }

    [Fact]
    public void ProgressiveJpegDecodesLikeABaselineOne()
    {
        // The decoder refuses JPEGs with an absurd number of progressive scans; ordinary ones must pass.
        const int width = 40, height = 30;
        var source = TestImages.Gradient(width, height);
        var baseline = JpegFixture.Compress(width, height, source, JpegFixture.PixelFormatRgb, JpegFixture.Subsampling420, 90);
        var progressive = JpegFixture.Compress(
            width, height, source, JpegFixture.PixelFormatRgb, JpegFixture.Subsampling420, 90, JpegFixture.FlagProgressive);
        Assert.Equal(0xC2, progressive[JpegFixture.StartOfFrameOffset(progressive) + 1]);

        var image = ImageDecoder.Decode(progressive, ImageDecodeLimits.Default);

        Assert.Equal(ImageDecoder.Decode(baseline, ImageDecodeLimits.Default).Rgb, image.Rgb);
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

        var jpeg = JpegFixture.Compress(width, height, gray, JpegFixture.PixelFormatGray, JpegFixture.SubsamplingGray, quality: 95);

        var image = ImageDecoder.Decode(jpeg, ImageDecodeLimits.Default);

        for (var i = 0; i < gray.Length; i++)
        {
            Assert.Equal(image.Rgb[i * 3], image.Rgb[i * 3 + 1]);
            Assert.Equal(image.Rgb[i * 3], image.Rgb[i * 3 + 2]);
            Assert.InRange(image.Rgb[i * 3] - gray[i], -8, 8);
        }
    }

    [Fact]
    public void TruncatedJpegIsRejectedWithTurboJpegsMessage()
    {
        var jpeg = JpegFixture.Compress(64, 64, TestImages.Gradient(64, 64), JpegFixture.PixelFormatRgb, JpegFixture.Subsampling444, 90);

        var error = Assert.Throws<ImageDecodeException>(
            () => ImageDecoder.Decode(jpeg.AsSpan(0, jpeg.Length * 2 / 3), ImageDecodeLimits.Default));

        // libjpeg's warning for a file that ends early; the image is not returned half grey.
        Assert.Equal("corrupt JPEG: Premature end of JPEG file", error.Reason);
    }

    [Fact]
    public void JpegWithGarbageAfterTheStartMarkerIsRejectedWithTurboJpegsMessage()
    {
        byte[] data = [0xFF, 0xD8, 0xFF, .. TestImages.Noise(200, seed: 4)];

        var error = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(data, ImageDecodeLimits.Default));

        Assert.StartsWith("corrupt JPEG: ", error.Reason, StringComparison.Ordinal);
        Assert.True(error.Reason.Length > "corrupt JPEG: ".Length + 3, error.Reason);
    }

    [Fact]
    public void JpegDeclaringHugeDimensionsIsRejectedBeforeAnyPixelMemoryIsAllocated()
    {
        var jpeg = JpegFixture.Compress(16, 16, TestImages.Gradient(16, 16), JpegFixture.PixelFormatRgb, JpegFixture.Subsampling444, 90);
        _ = ImageDecoder.Decode(jpeg, ImageDecodeLimits.Default);
        // SOFn: marker (2), length (2), precision (1), height (2), width (2).
        var frame = JpegFixture.StartOfFrameOffset(jpeg);
        BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(frame + 5), 60000);
        BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(frame + 7), 50000);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(jpeg, ImageDecodeLimits.Default));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal("image 50000x60000 exceeds the limit 4096x4096", error.Reason);
        Assert.True(allocated < 256 * 1024, $"allocated {allocated} bytes");
    }

    [Fact]
    public void CmykJpegIsRejectedAsUnsupported()
    {
        var cmyk = TestImages.Noise(8 * 8 * 4, seed: 5);
        var jpeg = JpegFixture.Compress(8, 8, cmyk, JpegFixture.PixelFormatCmyk, JpegFixture.Subsampling444, 90);

        var error = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(jpeg, ImageDecodeLimits.Default));

        Assert.StartsWith("unsupported JPEG: CMYK", error.Reason, StringComparison.Ordinal);
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
