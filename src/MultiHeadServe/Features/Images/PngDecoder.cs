using System.Buffers;

namespace MultiHeadServe.Features.Images;

/// <summary>
/// Decodes PNG through libpng's simplified API into 8-bit RGB.
/// </summary>
/// <remarks>
/// What the simplified API does with the less common PNG kinds, and why it is what we want:
/// <list type="bullet">
/// <item>grayscale and palette images are expanded to RGB (gray g becomes g,g,g);</item>
/// <item>an alpha channel (RGBA, gray+alpha, palette with tRNS) is dropped, keeping the stored
/// colour values, exactly as PIL's <c>Image.convert("RGB")</c> does, which is how training
/// pipelines usually load images; fully transparent pixels keep whatever colour they store;</item>
/// <item>16-bit channels are reduced to 8 bits (v / 257, rounded); a 16-bit file without a gAMA
/// or sRGB chunk is read as sRGB-encoded (<c>PNG_IMAGE_FLAG_16BIT_sRGB</c>), as every other tool
/// reads it, instead of libpng's default of linear;</item>
/// <item>a file declaring a gamma other than sRGB's is converted to sRGB (PIL ignores gAMA).</item>
/// </list>
/// Thread-safe: every call owns its <c>png_image</c>.
/// </remarks>
internal static unsafe class PngDecoder
{
    /// <summary>The first 8 bytes of every PNG file.</summary>
    public static ReadOnlySpan<byte> Signature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <exception cref="ImageDecodeException">The data is not a readable PNG, or it is larger than <paramref name="limits"/>.</exception>
    public static DecodedImage Decode(ReadOnlySpan<byte> encoded, ImageDecodeLimits limits)
    {
        var png = LibPng.Instance;

        // A local, so it stays put while libpng holds a pointer to it (begin_read to finish_read).
        var image = default(PngImage);
        image.Version = LibPng.ImageVersion;

        fixed (byte* data = encoded)
        {
            try
            {
                if (png.ImageBeginReadFromMemory(&image, data, (nuint)encoded.Length) == 0 || image.Failed)
                {
                    throw Corrupt(&image);
                }

                // Only the header has been read so far: nothing the size of the image is allocated yet.
                if (!limits.Allows(image.Width, image.Height))
                {
                    throw ImageDecoder.TooLarge(image.Width, image.Height, limits);
                }

                // Validated limits keep width * height * 4 within one array.
                var width = (int)image.Width;
                var height = (int)image.Height;

                var hasAlpha = (image.Format & LibPng.FormatFlagAlpha) != 0;
                image.Format = hasAlpha ? LibPng.FormatRgba : LibPng.FormatRgb;
                image.Flags |= LibPng.ImageFlag16BitSrgb;

                var rgb = new byte[width * height * 3];
                if (!hasAlpha)
                {
                    fixed (byte* pixels = rgb)
                    {
                        FinishRead(png, &image, pixels, width * 3);
                    }

                    return new DecodedImage(width, height, rgb);
                }

                var rgba = ArrayPool<byte>.Shared.Rent(width * height * 4);
                try
                {
                    fixed (byte* pixels = rgba)
                    {
                        FinishRead(png, &image, pixels, width * 4);
                    }

                    DropAlpha(rgba.AsSpan(0, width * height * 4), rgb);
                    return new DecodedImage(width, height, rgb);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(rgba);
                }
            }
            finally
            {
                // The png_image lives in this frame, so this finally, not a SafeHandle finalizer, owns
                // the control block. finish_read and libpng's failure paths already free it; freeing
                // a freed image is a no-op.
                png.ImageFree(&image);
            }
        }
    }

    private static void FinishRead(LibPng png, PngImage* image, byte* pixels, int rowStride)
    {
        // background NULL: no compositing is requested (alpha is kept, then dropped by us);
        // colormap NULL: the output format is not colour-mapped.
        if (png.ImageFinishRead(image, null, pixels, rowStride, null) == 0 || image->Failed)
        {
            throw Corrupt(image);
        }
    }

    private static void DropAlpha(ReadOnlySpan<byte> rgba, Span<byte> rgb)
    {
        for (int source = 0, target = 0; source < rgba.Length; source += 4, target += 3)
        {
            rgb[target] = rgba[source];
            rgb[target + 1] = rgba[source + 1];
            rgb[target + 2] = rgba[source + 2];
        }
    }

    private static ImageDecodeException Corrupt(PngImage* image)
    {
        var message = image->MessageText();
        return new ImageDecodeException($"corrupt PNG: {(message.Length == 0 ? "libpng could not read it" : message)}");
    }
}
