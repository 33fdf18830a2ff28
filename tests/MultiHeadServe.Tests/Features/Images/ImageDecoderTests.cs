using MultiHeadServe.Features.Images;
using SkiaSharp;

namespace MultiHeadServe.Tests.Features.Images;

public sealed class ImageDecoderTests
{
    [Fact]
    public void TheStartUpCheckLoadsSkiaAndDecodesWithIt()
    {
        ImageDecoder.EnsureCodecLoaded();
    }

    [Fact]
    public void EveryReferenceImageDecodesToThePixelsTheTrainingPipelineRead()
    {
        // reference.json holds each shapes PNG and the RGB pixels PIL read from it when the model was
        // trained: equal pixels give the model the same tensor as training (ImageTensorWriterTests).
        var reference = System.Text.Json.JsonDocument.Parse(File.ReadAllText(
            Path.Combine(Infrastructure.RepositoryPaths.Model("shapes"), "1", "reference.json"))).RootElement;
        var images = reference.GetProperty("images").EnumerateArray().Select(i => Convert.FromBase64String(i.GetString()!)).ToList();
        var pixels = reference.GetProperty("pixels").GetProperty("data").EnumerateArray().Select(p => Convert.FromBase64String(p.GetString()!)).ToList();
        Assert.Equal(32, images.Count);

        for (var i = 0; i < images.Count; i++)
        {
            var image = ImageDecoder.Decode(images[i], ImageDecodeLimits.Default);
            Assert.Equal((64, 64), (image.Width, image.Height));
            Assert.True(pixels[i].AsSpan().SequenceEqual(image.Rgb), $"reference image {i} decodes to other pixels");
        }
    }

    [Fact]
    public void EmptyInputIsRejected()
    {
        var error = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode([], ImageDecodeLimits.Default));

        Assert.Equal("image is empty", error.Reason);
        Assert.Equal(error.Reason, error.Message);
    }

    [Fact]
    public void RandomBytesAreAnUnsupportedFormat()
    {
        var data = TestImages.Noise(1000, seed: 6);
        data[0] = 0x00;

        var error = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(data, ImageDecodeLimits.Default));

        Assert.Equal("unsupported image format; send PNG, JPEG or WebP", error.Reason);
    }

    [Theory]
    [InlineData("GIF89a\u0001\u0000\u0001\u0000", "GIF")]
    [InlineData("BM\u0036\u0000\u0000\u0000", "BMP")]
    [InlineData("II*\u0000\u0008\u0000\u0000\u0000", "TIFF")]
    [InlineData("MM\u0000*\u0000\u0000\u0000\u0008", "TIFF")]
    public void OtherImageFormatsAreNamedInTheReason(string header, string format)
    {
        var data = System.Text.Encoding.Latin1.GetBytes(header);

        var error = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(data, ImageDecodeLimits.Default));

        Assert.Equal($"unsupported image format {format}; send PNG, JPEG or WebP", error.Reason);
    }

    [Fact]
    public void AnImageBase64EncodedTwiceIsExplained()
    {
        var png = PngFixture.Write(1, 1, PngFixture.ColorTypeRgb, [1, 2, 3]);
        var twice = System.Text.Encoding.ASCII.GetBytes(Convert.ToBase64String(png));

        var error = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(twice, ImageDecodeLimits.Default));

        Assert.Contains("base64-encode the image file once", error.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Base64AndDataUrlsDecodeToTheSamePixels()
    {
        byte[] pixels = [9, 8, 7, 6, 5, 4];
        var base64 = Convert.ToBase64String(PngFixture.Write(2, 1, PngFixture.ColorTypeRgb, pixels));

        var plain = ImageDecoder.DecodeBase64(base64, ImageDecodeLimits.Default);
        var dataUrl = ImageDecoder.DecodeBase64("data:image/png;base64," + base64, ImageDecodeLimits.Default);
        var wrapped = ImageDecoder.DecodeBase64(string.Join('\n', base64.Chunk(16).Select(line => new string(line))), ImageDecodeLimits.Default);

        Assert.Equal(pixels, plain.Rgb);
        Assert.Equal(pixels, dataUrl.Rgb);
        Assert.Equal(pixels, wrapped.Rgb);
    }

    [Theory]
    [InlineData("not base64!", "image is not valid base64")]
    [InlineData("", "image is empty")]
    [InlineData("data:image/png;base64,", "image is empty")]
    [InlineData("data:image/png,abc", "image data URL is not base64 (expected data:<type>;base64,<data>)")]
    public void MalformedBase64IsRejected(string text, string reason)
    {
        var error = Assert.Throws<ImageDecodeException>(() => ImageDecoder.DecodeBase64(text, ImageDecodeLimits.Default));

        Assert.Equal(reason, error.Reason);
    }

    [Fact]
    public void UnusableLimitsAreAConfigurationErrorNotABadRequest()
    {
        var png = PngFixture.Write(1, 1, PngFixture.ColorTypeRgb, [1, 2, 3]);

        Assert.Throws<ArgumentOutOfRangeException>(() => ImageDecoder.Decode(png, new ImageDecodeLimits { MaxWidth = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => ImageDecoder.Decode(png, new ImageDecodeLimits { MaxWidth = 100_000, MaxHeight = 100_000 }));
    }

    [Fact]
    public void DamagedFilesNeverEscapeAsAnythingButImageDecodeException()
    {
        // Hostile input must not crash the process or surface as a 500: mutate real files at
        // random (bytes flipped, ranges zeroed, cut short) and decode every variant.
        var random = new Random(7);
        var originals = new[]
        {
            PngFixture.Write(24, 16, PngFixture.ColorTypeRgb, TestImages.Gradient(24, 16)),
            PngFixture.Write(24, 16, PngFixture.ColorTypeRgba, TestImages.Noise(24 * 16 * 4, seed: 8)),
            SkiaFixture.Jpeg(24, 16, TestImages.Gradient(24, 16), SKJpegEncoderDownsample.Downsample420, 80),
            SkiaFixture.Webp(24, 16, TestImages.Gradient(24, 16), 3, lossless: false),
        };

        int decoded = 0, rejected = 0;
        for (var round = 0; round < 600; round++)
        {
            var original = originals[round % originals.Length];
            var data = original.ToArray();
            switch (random.Next(3))
            {
                case 0:
                    for (var flips = random.Next(1, 6); flips > 0; flips--)
                    {
                        data[random.Next(8, data.Length)] ^= (byte)random.Next(1, 256);
                    }

                    break;
                case 1:
                    var start = random.Next(8, data.Length);
                    data.AsSpan(start, Math.Min(random.Next(1, 64), data.Length - start)).Clear();
                    break;
                default:
                    data = data[..random.Next(3, data.Length)];
                    break;
            }

            try
            {
                var image = ImageDecoder.Decode(data, ImageDecodeLimits.Default);
                Assert.Equal(image.Width * image.Height * 3, image.Rgb.Length);
                decoded++;
            }
            catch (ImageDecodeException error)
            {
                Assert.False(string.IsNullOrWhiteSpace(error.Reason));
                rejected++;
            }
        }

        // The damage must reach the codecs: most variants are refused, with a reason.
        Assert.True(rejected > decoded * 3, $"{decoded} decoded, {rejected} rejected");
    }

    [Fact]
    public void ConcurrentDecodesOfTheSameImageAgree()
    {
        var png = PngFixture.Write(64, 48, PngFixture.ColorTypeRgba, TestImages.Noise(64 * 48 * 4, seed: 9));
        var jpeg = SkiaFixture.Jpeg(64, 48, TestImages.Gradient(64, 48), SKJpegEncoderDownsample.Downsample420, 85);
        var webp = SkiaFixture.Webp(64, 48, TestImages.Gradient(64, 48), 3, lossless: false);
        var expectedPng = ImageDecoder.Decode(png, ImageDecodeLimits.Default).Rgb;
        var expectedJpeg = ImageDecoder.Decode(jpeg, ImageDecodeLimits.Default).Rgb;
        var expectedWebp = ImageDecoder.Decode(webp, ImageDecodeLimits.Default).Rgb;

        const int threads = 8;
        using var start = new Barrier(threads);
        var mismatches = 0;
        var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        var workers = Enumerable.Range(0, threads).Select(_ => new Thread(() =>
        {
            try
            {
                start.SignalAndWait();
                for (var i = 0; i < 40; i++)
                {
                    if (!ImageDecoder.Decode(png, ImageDecodeLimits.Default).Rgb.AsSpan().SequenceEqual(expectedPng) ||
                        !ImageDecoder.Decode(jpeg, ImageDecodeLimits.Default).Rgb.AsSpan().SequenceEqual(expectedJpeg) ||
                        !ImageDecoder.Decode(webp, ImageDecodeLimits.Default).Rgb.AsSpan().SequenceEqual(expectedWebp))
                    {
                        Interlocked.Increment(ref mismatches);
                    }
                }
            }
            catch (Exception error)
            {
                failures.Enqueue(error);
            }
        })).ToList();

        workers.ForEach(worker => worker.Start());
        workers.ForEach(worker => worker.Join());

        Assert.Empty(failures);
        Assert.Equal(0, mismatches);
    }
}
