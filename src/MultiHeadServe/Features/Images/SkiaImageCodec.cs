using System.Buffers;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using SkiaSharp;

namespace MultiHeadServe.Features.Images;

/// <summary>
/// Decodes PNG, JPEG and WebP with Skia's codecs (<see cref="SKCodec"/>) into 8-bit RGB.
/// </summary>
/// <remarks>
/// What it does, and why it is what we want:
/// <list type="bullet">
/// <item>the header is parsed first (<see cref="SKCodec.Create(SKData)"/>), and the
/// dimensions in <see cref="SKCodec.Info"/> are checked against the limits before any pixel memory exists;</item>
/// <item>pixels are asked for as RGBA, unpremultiplied, with no colour space: Skia then expands grayscale
/// and palettes (gray g becomes g,g,g), keeps the stored colour of translucent and fully transparent
/// pixels, and converts no colour — gAMA, iCCP and ICC profiles are ignored, as PIL ignores them. Alpha is
/// dropped afterwards, which is PIL's <c>Image.convert("RGB")</c>, how training pipelines usually load images;</item>
/// <item>16-bit PNG channels are reduced to 8 bits by keeping the high byte, as PIL reads 16-bit RGB;</item>
/// <item>anything but a complete decode is an error: Skia reports a truncated file (incomplete input) and a
/// PNG checksum or zlib error (error in input) after filling the missing rows, and the image is rejected
/// rather than returned partly blank. Corrupt entropy-coded JPEG data that libjpeg conceals with a warning
/// is not reported by Skia: such a file decodes, degraded, as browsers and PIL decode it;</item>
/// <item>EXIF orientation is ignored, as PIL's <c>Image.open</c> ignores it; an animated WebP gives its first frame.</item>
/// </list>
/// Thread-safe: every call owns its codec.
/// </remarks>
internal static unsafe class SkiaImageCodec
{
    /// <exception cref="ImageDecodeException">The data is not a readable image of <paramref name="format"/>, or it is larger than <paramref name="limits"/>.</exception>
    public static DecodedImage Decode(ReadOnlySpan<byte> encoded, EncodedImageFormat format, ImageDecodeLimits limits)
    {
        fixed (byte* data = encoded)
        {
            // The codec reads the caller's bytes in place (no copy); it is disposed before they are unpinned.
            using var bytes = SKData.Create((IntPtr)data, encoded.Length);
            using var codec = SKCodec.Create(bytes) ?? throw UnreadableHeader(bytes, format);

            if (codec.EncodedFormat != format.Skia)
            {
                throw Corrupt(format, $"the data is {codec.EncodedFormat}");
            }

            // Only the header has been read so far: nothing the size of the image is allocated yet.
            var info = codec.Info;
            if (info.Width <= 0 || info.Height <= 0)
            {
                throw Corrupt(format, $"it declares {info.Width}x{info.Height} pixels");
            }

            if (!limits.Allows(info.Width, info.Height))
            {
                throw ImageDecoder.TooLarge(info.Width, info.Height, limits);
            }

            if (limits.Budget is { } budget && !budget.TryTake((long)info.Width * info.Height))
            {
                throw new ImageDecodeException(
                    $"decoding this {info.Width}x{info.Height} image would pass the request's budget of {budget.Total} pixels for all its images together (Serve:MaxPixelsPerRequest)")
                {
                    OverBudget = true,
                };
            }

            // A PNG with narrow rows decodes faster with its image data inflated in one piece (same pixels).
            if (format == EncodedImageFormat.Png && NarrowPngInflater.TryRewrite(encoded, out var rewritten, out var rewrittenLength))
            {
                try
                {
                    fixed (byte* stored = rewritten)
                    {
                        using var storedBytes = SKData.Create((IntPtr)stored, rewrittenLength);
                        using var storedCodec = SKCodec.Create(storedBytes);
                        if (storedCodec is not null && storedCodec.Info.Width == info.Width && storedCodec.Info.Height == info.Height)
                        {
                            return ReadPixels(storedCodec, format);
                        }
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(rewritten!);
                }
            }

            return ReadPixels(codec, format);
        }
    }

    /// <summary>Decodes the pixels of an image whose header has passed the limits, as RGB.</summary>
    private static DecodedImage ReadPixels(SKCodec codec, EncodedImageFormat format)
    {
        // Validated limits keep width * height * 4 within one array.
        var width = codec.Info.Width;
        var height = codec.Info.Height;
        var rgbaLength = width * height * 4;
        var rgba = ArrayPool<byte>.Shared.Rent(rgbaLength);
        try
        {
            SKCodecResult decoded;
            fixed (byte* pixels = rgba)
            {
                decoded = codec.GetPixels(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul), (IntPtr)pixels);
            }

            if (decoded != SKCodecResult.Success)
            {
                throw Corrupt(format, decoded switch
                {
                    SKCodecResult.IncompleteInput => "the data ends before the image does (a truncated file)",
                    SKCodecResult.ErrorInInput => "the image data is damaged",
                    SKCodecResult.InvalidInput => "the image data is not valid",
                    _ => $"Skia cannot decode it ({decoded})",
                });
            }

            var image = DecodedImage.Rent(width, height);
            DropAlpha(rgba.AsSpan(0, rgbaLength), image.Writable);
            return image;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rgba);
        }
    }

    /// <summary>The image as a baseline JPEG of the given quality (1-100): what the OpenAPI explorer's examples carry of a large image.</summary>
    public static byte[] EncodeJpeg(DecodedImage image, int quality)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentOutOfRangeException.ThrowIfLessThan(quality, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(quality, 100);
        using var bitmap = new SKBitmap(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var rgbx = bitmap.GetPixelSpan();
        var rgb = image.Pixels;
        for (int pixel = 0, pixels = image.Width * image.Height; pixel < pixels; pixel++)
        {
            rgbx[pixel * 4] = rgb[pixel * 3];
            rgbx[(pixel * 4) + 1] = rgb[(pixel * 3) + 1];
            rgbx[(pixel * 4) + 2] = rgb[(pixel * 3) + 2];
            rgbx[(pixel * 4) + 3] = 0xFF;
        }

        using var jpeg = bitmap.Encode(SKEncodedImageFormat.Jpeg, quality)
            ?? throw new InvalidOperationException($"Skia could not encode a {image.Width}x{image.Height} image as JPEG.");
        return jpeg.ToArray();
    }

    /// <summary>Loads Skia's native library and round-trips one pixel through its PNG codec.</summary>
    /// <exception cref="InvalidOperationException">The library is missing, of another version, or does not decode.</exception>
    public static void EnsureLoaded()
    {
        try
        {
            using var bitmap = new SKBitmap(new SKImageInfo(1, 1, SKColorType.Rgba8888, SKAlphaType.Unpremul));
            bitmap.SetPixel(0, 0, new SKColor(12, 34, 56));
            using var png = bitmap.Encode(SKEncodedImageFormat.Png, 100);
            using var image = Decode(png.AsSpan(), EncodedImageFormat.Png, ImageDecodeLimits.Default);
            if (image.Rgb is not [12, 34, 56])
            {
                throw new InvalidOperationException($"SkiaSharp decoded a known pixel as {string.Join(",", image.Rgb)}, not 12,34,56.");
            }
        }
        catch (Exception ex) when (ex is DllNotFoundException or TypeInitializationException or EntryPointNotFoundException
            or BadImageFormatException or InvalidOperationException or ImageDecodeException)
        {
            throw new InvalidOperationException(
                "Image models need SkiaSharp's native library, libSkiaSharp, and it could not be used: " +
                $"{ex.GetBaseException().Message} Deploy the application folder whole: it carries libSkiaSharp " +
                "(from the SkiaSharp.NativeAssets.Linux.NoDependencies package, which needs only libc) beside MultiHeadServe.dll.", ex);
        }
    }

    /// <summary>Why Skia would not open the file, asked again through the stream API, which says (only failures pay for it).</summary>
    private static ImageDecodeException UnreadableHeader(SKData bytes, EncodedImageFormat format)
    {
        // The codec owns the stream from Create on, whether or not Create succeeds.
        using var codec = SKCodec.Create(new SKMemoryStream(bytes), out var result);
        return Corrupt(format, result == SKCodecResult.IncompleteInput ? "the file ends inside its header" : "its header is not valid");
    }

    /// <summary>RGBA to RGB. Vectorised: done one byte at a time it costs a 64x64 image as much as a sixth of its decode.</summary>
    private static void DropAlpha(ReadOnlySpan<byte> rgba, Span<byte> rgb)
    {
        var pixels = rgb.Length / 3;
        var pixel = 0;
        if (Vector128.IsHardwareAccelerated)
        {
            // Four pixels in, twelve bytes out; each store writes 16 bytes, the last 4 overwritten by the next.
            var keepColour = Vector128.Create((byte)0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 15, 15, 15, 15);
            ref var source = ref MemoryMarshal.GetReference(rgba);
            ref var target = ref MemoryMarshal.GetReference(rgb);
            for (; (pixel * 3) + 16 <= rgb.Length && (pixel * 4) + 16 <= rgba.Length; pixel += 4)
            {
                Vector128.Shuffle(Vector128.LoadUnsafe(ref source, (nuint)(pixel * 4)), keepColour).StoreUnsafe(ref target, (nuint)(pixel * 3));
            }
        }

        for (; pixel < pixels; pixel++)
        {
            rgb[pixel * 3] = rgba[pixel * 4];
            rgb[(pixel * 3) + 1] = rgba[(pixel * 4) + 1];
            rgb[(pixel * 3) + 2] = rgba[(pixel * 4) + 2];
        }
    }

    private static ImageDecodeException Corrupt(EncodedImageFormat format, string reason) => new($"corrupt {format.Name}: {reason}");
}
