using SkiaSharp;

namespace MultiHeadServe.Tests.Features.Images;

/// <summary>
/// Real JPEG and WebP files for tests, encoded by SkiaSharp's own encoders (libjpeg-turbo and libwebp
/// inside Skia). They write baseline JPEGs only: no progressive or CMYK files.
/// </summary>
internal static class SkiaFixture
{
    /// <summary>Compresses packed 8-bit RGB (or, with <paramref name="gray"/>, one byte per pixel into a grayscale JPEG).</summary>
    public static byte[] Jpeg(int width, int height, ReadOnlySpan<byte> pixels, SKJpegEncoderDownsample subsampling, int quality, bool gray = false)
    {
        var options = new SKJpegEncoderOptions(quality, subsampling, SKJpegEncoderAlphaOption.Ignore);
        return gray
            ? Encode(width, height, SKColorType.Gray8, pixels, pixmap => pixmap.Encode(options))
            : Encode(width, height, SKColorType.Rgba8888, ToRgba(pixels, 3), pixmap => pixmap.Encode(options));
    }

    /// <summary>Encodes packed RGB (3 bytes per pixel) or RGBA (4) as WebP; lossless keeps every value.</summary>
    public static byte[] Webp(int width, int height, ReadOnlySpan<byte> pixels, int bytesPerPixel, bool lossless, int quality = 90)
    {
        var options = new SKWebpEncoderOptions(lossless ? SKWebpEncoderCompression.Lossless : SKWebpEncoderCompression.Lossy, quality);
        return Encode(width, height, SKColorType.Rgba8888, ToRgba(pixels, bytesPerPixel), pixmap => pixmap.Encode(options));
    }

    /// <summary>Encodes packed RGBA as PNG with Skia's encoder (libpng, adaptive row filters, zlib level 6).</summary>
    public static byte[] Png(int width, int height, ReadOnlySpan<byte> rgba) =>
        Encode(width, height, SKColorType.Rgba8888, rgba, pixmap => pixmap.Encode(new SKPngEncoderOptions(SKPngEncoderFilterFlags.AllFilters, 6)));

    /// <summary>Offset of the SOF0/SOF2 marker (baseline or progressive frame header).</summary>
    public static int StartOfFrameOffset(byte[] jpeg)
    {
        for (var i = 2; i + 1 < jpeg.Length; i++)
        {
            if (jpeg[i] == 0xFF && jpeg[i + 1] is 0xC0 or 0xC2)
            {
                return i;
            }
        }

        throw new InvalidOperationException("no SOF marker");
    }

    /// <summary>The frame's component count and the first component's sampling factors (0x11: 4:4:4, 0x22: 4:2:0).</summary>
    public static (int Components, byte LumaSampling) Frame(byte[] jpeg)
    {
        // SOFn: marker (2), length (2), precision (1), height (2), width (2), components (1), then per component: id, HV, table.
        var frame = StartOfFrameOffset(jpeg);
        return (jpeg[frame + 9], jpeg[frame + 11]);
    }

    private static byte[] ToRgba(ReadOnlySpan<byte> pixels, int bytesPerPixel)
    {
        if (bytesPerPixel == 4)
        {
            return pixels.ToArray();
        }

        var rgba = new byte[pixels.Length / 3 * 4];
        for (int source = 0, target = 0; source < pixels.Length; source += 3, target += 4)
        {
            rgba[target] = pixels[source];
            rgba[target + 1] = pixels[source + 1];
            rgba[target + 2] = pixels[source + 2];
            rgba[target + 3] = 255;
        }

        return rgba;
    }

    private static unsafe byte[] Encode(int width, int height, SKColorType colorType, ReadOnlySpan<byte> pixels, Func<SKPixmap, SKData?> encode)
    {
        fixed (byte* data = pixels)
        {
            using var pixmap = new SKPixmap(new SKImageInfo(width, height, colorType, SKAlphaType.Unpremul), (IntPtr)data);
            using var encoded = encode(pixmap) ?? throw new InvalidOperationException($"SkiaSharp could not encode a {width}x{height} {colorType} image");
            return encoded.ToArray();
        }
    }
}
