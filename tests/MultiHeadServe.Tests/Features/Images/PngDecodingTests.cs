using System.Buffers.Binary;
using MultiHeadServe.Features.Images;

namespace MultiHeadServe.Tests.Features.Images;

public sealed class PngDecodingTests
{
    [Fact]
    public void RgbPngDecodesToTheExactPixels()
    {
        var pixels = TestImages.Noise(5 * 3 * 3, seed: 1);
        var png = PngFixture.Write(5, 3, PngFixture.ColorTypeRgb, pixels);
        Assert.Equal(PngFixture.ColorTypeRgb, PngFixture.ColorType(png));

        var image = ImageDecoder.Decode(png, ImageDecodeLimits.Default);

        Assert.Equal(5, image.Width);
        Assert.Equal(3, image.Height);
        Assert.Equal(pixels, image.Rgb);
    }

    [Fact]
    public void RgbaPngDropsAlphaAndKeepsTheStoredColour()
    {
        // Opaque, half transparent and fully transparent pixels: colour survives as stored.
        byte[] rgba =
        [
            10, 20, 30, 255,   200, 100, 50, 128,
            1, 2, 3, 0,        255, 255, 255, 1,
        ];
        var png = PngFixture.Write(2, 2, PngFixture.ColorTypeRgba, rgba);
        Assert.Equal(PngFixture.ColorTypeRgba, PngFixture.ColorType(png));

        var image = ImageDecoder.Decode(png, ImageDecodeLimits.Default);

        Assert.Equal([10, 20, 30, 200, 100, 50, 1, 2, 3, 255, 255, 255], image.Rgb);
    }

    [Fact]
    public void GrayscalePngExpandsToEqualChannels()
    {
        byte[] gray = [0, 1, 127, 128, 254, 255];
        var png = PngFixture.Write(3, 2, PngFixture.ColorTypeGray, gray);
        Assert.Equal(PngFixture.ColorTypeGray, PngFixture.ColorType(png));

        var image = ImageDecoder.Decode(png, ImageDecodeLimits.Default);

        Assert.Equal((3, 2), (image.Width, image.Height));
        Assert.Equal([0, 0, 0, 1, 1, 1, 127, 127, 127, 128, 128, 128, 254, 254, 254, 255, 255, 255], image.Rgb);
    }

    [Fact]
    public void GrayAlphaPngDropsAlphaAndExpandsTheGray()
    {
        byte[] grayAlpha = [40, 255, 90, 0];
        var png = PngFixture.Write(2, 1, PngFixture.ColorTypeGrayAlpha, grayAlpha);
        Assert.Equal(PngFixture.ColorTypeGrayAlpha, PngFixture.ColorType(png));

        var image = ImageDecoder.Decode(png, ImageDecodeLimits.Default);

        Assert.Equal([40, 40, 40, 90, 90, 90], image.Rgb);
    }

    [Fact]
    public void PalettePngDecodesThroughItsPalette()
    {
        byte[] palette = [255, 0, 0, 0, 128, 0, 7, 8, 9];
        byte[] indices = [0, 1, 2, 2, 1, 0];
        var png = PngFixture.Write(3, 2, PngFixture.ColorTypePalette, indices, palette);
        Assert.Equal(PngFixture.ColorTypePalette, PngFixture.ColorType(png));

        var image = ImageDecoder.Decode(png, ImageDecodeLimits.Default);

        Assert.Equal([255, 0, 0, 0, 128, 0, 7, 8, 9, 7, 8, 9, 0, 128, 0, 255, 0, 0], image.Rgb);
    }

    [Fact]
    public void PalettePngWithTransparencyDropsAlpha()
    {
        // Entry 0 opaque red, entry 1 fully transparent blue: the stored colour survives.
        byte[] palette = [255, 0, 0, 0, 0, 255];
        byte[] indices = [0, 1];
        var png = PngFixture.Write(2, 1, PngFixture.ColorTypePalette, indices, palette, paletteAlpha: [255, 0]);
        Assert.Equal(PngFixture.ColorTypePalette, PngFixture.ColorType(png));

        var image = ImageDecoder.Decode(png, ImageDecodeLimits.Default);

        Assert.Equal([255, 0, 0, 0, 0, 255], image.Rgb);
    }

    [Fact]
    public void SixteenBitPngWithoutGammaIsReducedToEightBitsWithoutAGammaCurve()
    {
        // Most tools write 16-bit PNGs without gAMA; v * 257 must come back as v, not through a gamma curve.
        byte[] expected = [0, 1, 64, 128, 200, 255];
        var png = PngFixture.Write16(2, 1, PngFixture.ColorTypeRgb, [.. expected.Select(v => (ushort)(v * 257))]);
        Assert.Equal(16, PngFixture.BitDepth(png));

        var image = ImageDecoder.Decode(png, ImageDecodeLimits.Default);

        Assert.Equal(expected, image.Rgb);
    }

    [Fact]
    public void SixteenBitRgbaPngDropsAlphaAndReducesToEightBits()
    {
        byte[] expected = [10, 20, 30, 250, 128, 0];
        var png = PngFixture.Write16(2, 1, PngFixture.ColorTypeRgba, [10 * 257, 20 * 257, 30 * 257, 65535, 250 * 257, 128 * 257, 0, 65535]);

        var image = ImageDecoder.Decode(png, ImageDecodeLimits.Default);

        Assert.Equal(expected, image.Rgb);
    }

    [Fact]
    public void SixteenBitGrayAndGrayAlphaPngsExpandToEqualChannels()
    {
        var gray = PngFixture.Write16(3, 1, PngFixture.ColorTypeGray, [0, 100 * 257, 65535]);
        var grayAlpha = PngFixture.Write16(2, 1, PngFixture.ColorTypeGrayAlpha, [40 * 257, 65535, 90 * 257, 0]);

        Assert.Equal([0, 0, 0, 100, 100, 100, 255, 255, 255], ImageDecoder.Decode(gray, ImageDecodeLimits.Default).Rgb);
        Assert.Equal([40, 40, 40, 90, 90, 90], ImageDecoder.Decode(grayAlpha, ImageDecodeLimits.Default).Rgb);
    }

    [Fact]
    public void SixteenBitSamplesBetweenEightBitValuesKeepTheirHighByte()
    {
        // Skia keeps the high byte, as PIL reads 16-bit RGB PNGs (its "RGB;16B" unpacker): 0x80FF is 128, not
        // the 129 of v / 257 rounded; multiples of 257 (above) are exact either way.
        var png = PngFixture.Write16(1, 1, PngFixture.ColorTypeRgb, [0x807F, 0x80FF, 0x00FF]);

        var image = ImageDecoder.Decode(png, ImageDecodeLimits.Default);

        Assert.Equal([128, 128, 0], image.Rgb);
    }

    [Fact]
    public void AGammaChunkDoesNotChangeThePixelsAsPilIgnoresIt()
    {
        // gAMA 1.0 (linear): a colour-managed decoder would brighten mid-tones; training pipelines read the stored values.
        byte[] rgb = [0, 64, 128, 200, 255, 30];
        var png = PngFixture.WriteWithGamma(2, 1, rgb, gamma: 100000);

        var image = ImageDecoder.Decode(png, ImageDecodeLimits.Default);

        Assert.Equal(rgb, image.Rgb);
    }

    [Fact]
    public void PngWithAWrongChunkChecksumIsRejectedAsDamaged()
    {
        var png = PngFixture.Write(8, 8, PngFixture.ColorTypeRgb, TestImages.Noise(8 * 8 * 3, seed: 2));
        var idat = PngFixture.IdatDataOffset(png);
        var crc = idat + (int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(idat - 8));
        png[crc] ^= 0xFF;

        var error = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(png, ImageDecodeLimits.Default));

        Assert.Equal("corrupt PNG: the image data is damaged", error.Reason);
    }

    [Fact]
    public void PngWithDamagedCompressedDataIsRejectedAsDamaged()
    {
        var png = PngFixture.Write(8, 8, PngFixture.ColorTypeRgb, TestImages.Noise(8 * 8 * 3, seed: 2));
        // Noise does not compress: zlib stores it, and byte 3 is the stored block's length.
        png[PngFixture.IdatDataOffset(png) + 3] ^= 0xFF;

        var error = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(png, ImageDecodeLimits.Default));

        Assert.Equal("corrupt PNG: the image data is damaged", error.Reason);
    }

    [Fact]
    public void TruncatedPngIsRejectedRatherThanReturnedPartlyBlank()
    {
        var png = PngFixture.Write(16, 16, PngFixture.ColorTypeRgb, TestImages.Noise(16 * 16 * 3, seed: 3));

        var error = Assert.Throws<ImageDecodeException>(
            () => ImageDecoder.Decode(png.AsSpan(0, png.Length / 2), ImageDecodeLimits.Default));

        Assert.Equal("corrupt PNG: the data ends before the image does (a truncated file)", error.Reason);
    }

    [Fact]
    public void PngSignatureAloneIsRejectedAsCorrupt()
    {
        byte[] signature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

        var error = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(signature, ImageDecodeLimits.Default));

        Assert.StartsWith("corrupt PNG: ", error.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void PngDeclaring100000By100000PixelsIsRejectedBeforeAnyPixelMemoryIsAllocated()
    {
        // A few hundred bytes that would need 30 GB of RGB.
        var bomb = PngFixture.FromChunks(100_000, 100_000, bitDepth: 8, PngFixture.ColorTypeRgb, new byte[1 + 300]);
        _ = ImageDecoder.Decode(PngFixture.Write(1, 1, PngFixture.ColorTypeRgb, [1, 2, 3]), ImageDecodeLimits.Default);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(bomb, ImageDecodeLimits.Default));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal("image 100000x100000 exceeds the limit 4096x4096", error.Reason);
        Assert.True(allocated < 256 * 1024, $"allocated {allocated} bytes");
    }

    [Fact]
    public void LimitsAreInclusiveInEachDimension()
    {
        var limits = new ImageDecodeLimits { MaxWidth = 8, MaxHeight = 4 };
        var atLimit = PngFixture.Write(8, 4, PngFixture.ColorTypeGray, new byte[8 * 4]);
        var tooWide = PngFixture.Write(9, 4, PngFixture.ColorTypeGray, new byte[9 * 4]);
        var tooTall = PngFixture.Write(8, 5, PngFixture.ColorTypeGray, new byte[8 * 5]);

        Assert.Equal(8 * 4 * 3, ImageDecoder.Decode(atLimit, limits).Rgb.Length);
        Assert.Equal("image 9x4 exceeds the limit 8x4", Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(tooWide, limits)).Reason);
        Assert.Equal("image 8x5 exceeds the limit 8x4", Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(tooTall, limits)).Reason);
    }
}
