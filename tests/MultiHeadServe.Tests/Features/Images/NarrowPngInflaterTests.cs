using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using MultiHeadServe.Features.Images;
using SkiaSharp;

namespace MultiHeadServe.Tests.Features.Images;

/// <summary>
/// The rewrite that hands Skia narrow PNGs with their image data already inflated: it must never change a
/// pixel, and it must step aside for every file it was not made for, so Skia judges those as before.
/// </summary>
public sealed class NarrowPngInflaterTests
{
    public static TheoryData<string> NarrowKinds => new(NarrowPngs().Keys);

    [Theory]
    [MemberData(nameof(NarrowKinds))]
    public void NarrowPngsOfEveryKindAreRewrittenWithStoredDataAndDecodeToTheSamePixels(string kind)
    {
        var png = NarrowPngs()[kind];

        var rewritten = Rewrite(png);

        Assert.NotNull(rewritten);
        Assert.True(IsStored(rewritten), "the rewritten file's image data should be stored deflate blocks");
        Assert.Equal(SkiaRgba(png), SkiaRgba(rewritten));
        Assert.Equal(Rgb(SkiaRgba(png)), ImageDecoder.Decode(png, ImageDecodeLimits.Default).Rgb);
    }

    [Fact]
    public void ChunksAroundTheImageDataAreKeptInTheirPlaces()
    {
        var png = Rebuild(PngFixture.Write(8, 4, PngFixture.ColorTypeRgb, TestImages.Noise(8 * 4 * 3, seed: 3)), chunks =>
        {
            chunks.Insert(1, ("tEXt", "Comment\0before"u8.ToArray()));
            chunks.Insert(chunks.Count - 1, ("tEXt", "Comment\0after"u8.ToArray()));
        });

        var rewritten = Rewrite(png)!;

        Assert.Equal(
            ["IHDR", "tEXt", "IDAT", "tEXt", "IEND"],
            Chunks(rewritten).Select(chunk => chunk.Type));
        Assert.Equal(Chunks(png).Where(c => c.Type != "IDAT").Select(c => c.Data), Chunks(rewritten).Where(c => c.Type != "IDAT").Select(c => c.Data));
    }

    [Fact]
    public void RowsOf258BytesOrMoreAreLeftToLibpng()
    {
        // 85 RGB pixels: 255 bytes and the filter byte, still narrow; 86: 259, wide enough for zlib's fast loop.
        Assert.NotNull(Rewrite(PngFixture.Write(85, 2, PngFixture.ColorTypeRgb, TestImages.Noise(85 * 2 * 3, seed: 4))));
        Assert.Null(Rewrite(PngFixture.Write(86, 2, PngFixture.ColorTypeRgb, TestImages.Noise(86 * 2 * 3, seed: 4))));
    }

    public static TheoryData<string> DeclinedKinds => new(DeclinedPngs().Keys);

    [Theory]
    [MemberData(nameof(DeclinedKinds))]
    public void FilesOutsideThePlainCaseAreLeftToSkiaWhichJudgesThemAsBefore(string kind)
    {
        var png = DeclinedPngs()[kind];

        Assert.Null(Rewrite(png));

        // What the decoder says about the file is what Skia says about the original.
        var skia = SkiaResult(png);
        try
        {
            var decoded = ImageDecoder.Decode(png, ImageDecodeLimits.Default);
            Assert.Equal(SKCodecResult.Success, skia.Result);
            Assert.Equal(Rgb(skia.Rgba), decoded.Rgb);
        }
        catch (ImageDecodeException ex)
        {
            Assert.NotEqual(SKCodecResult.Success, skia.Result);
            Assert.StartsWith("corrupt PNG", ex.Message);
        }
    }

    private static Dictionary<string, byte[]> NarrowPngs()
    {
        var rgb = TestImages.Noise(64 * 64 * 3, seed: 1);
        var rgba = TestImages.Noise(40 * 30 * 4, seed: 2);
        var gray = TestImages.Noise(50 * 20, seed: 5);
        var samples = TestImages.Noise(20 * 10 * 3, seed: 6).Select((b, i) => (ushort)(b * 257 + i)).ToArray();
        byte[] palette = [255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9];
        var indices = TestImages.Noise(30 * 30, seed: 7).Select(b => (byte)(b % 4)).ToArray();
        var tall = TestImages.Noise(60 * 1000 * 3, seed: 8);
        var gradient = TestImages.Gradient(64, 64);
        var gradientRgba = new byte[64 * 64 * 4];
        for (var i = 0; i < 64 * 64; i++)
        {
            gradient.AsSpan(i * 3, 3).CopyTo(gradientRgba.AsSpan(i * 4));
            gradientRgba[(i * 4) + 3] = (byte)(255 - (i % 200));
        }

        return new()
        {
            ["rgb 64x64"] = PngFixture.Write(64, 64, PngFixture.ColorTypeRgb, rgb),
            ["rgba 40x30"] = PngFixture.Write(40, 30, PngFixture.ColorTypeRgba, rgba),
            ["gray 50x20"] = PngFixture.Write(50, 20, PngFixture.ColorTypeGray, gray),
            ["gray+alpha 25x20"] = PngFixture.Write(25, 20, PngFixture.ColorTypeGrayAlpha, gray),
            ["palette with tRNS"] = PngFixture.Write(30, 30, PngFixture.ColorTypePalette, indices, palette, [255, 128, 0, 255]),
            ["16-bit rgb 20x10"] = PngFixture.Write16(20, 10, PngFixture.ColorTypeRgb, samples),
            ["1-bit gray 200x3"] = PngFixture.FromChunks(200, 3, 1, PngFixture.ColorTypeGray, Scanlines(25, 3, seed: 9)),
            ["skia-encoded with row filters"] = SkiaFixture.Png(64, 64, gradientRgba),
            ["image data over several stored blocks"] = PngFixture.Write(60, 1000, PngFixture.ColorTypeRgb, tall),
            ["image data in three IDAT chunks"] = Rebuild(PngFixture.Write(64, 64, PngFixture.ColorTypeRgb, rgb), SplitImageData),
        };
    }

    private static Dictionary<string, byte[]> DeclinedPngs()
    {
        var rgb = TestImages.Noise(16 * 16 * 3, seed: 11);
        var plain = PngFixture.Write(16, 16, PngFixture.ColorTypeRgb, rgb);
        var idat = PngFixture.IdatDataOffset(plain);

        var badCrc = (byte[])plain.Clone();
        badCrc[idat + 20] ^= 0x55;

        // A damaged stream behind a correct chunk checksum: only inflating finds it.
        var damaged = Rebuild(plain, chunks => chunks[1] = ("IDAT", Flip(chunks[1].Data, 40)));

        // One row more than the header declares: libpng warns; Skia decides.
        var extraRow = Rebuild(plain, chunks => chunks[1] = ("IDAT", Compress(new byte[((16 * 3) + 1) * 17])));

        // One row fewer: the stream ends before the image does.
        var missingRow = Rebuild(plain, chunks => chunks[1] = ("IDAT", Compress(new byte[((16 * 3) + 1) * 15])));

        return new()
        {
            ["interlaced"] = Rebuild(plain, chunks => chunks[0] = ("IHDR", WithByte(chunks[0].Data, 12, 1))),
            ["wrong IDAT checksum"] = badCrc,
            ["damaged deflate stream"] = damaged,
            ["wrong Adler-32"] = Rebuild(plain, chunks => chunks[1] = ("IDAT", Flip(chunks[1].Data, chunks[1].Data.Length - 1))),
            ["more image data than rows"] = extraRow,
            ["less image data than rows"] = missingRow,
            ["IDAT chunks split by another chunk"] = Rebuild(plain, chunks =>
            {
                SplitImageData(chunks);
                chunks.Insert(2, ("tEXt", "Comment\0between"u8.ToArray()));
            }),
            ["no IEND"] = plain[..^12],
            ["truncated inside IDAT"] = plain[..(idat + 30)],
            ["no IDAT"] = Rebuild(plain, chunks => chunks.RemoveAt(1)),
            ["unknown filter method"] = Rebuild(plain, chunks => chunks[0] = ("IHDR", WithByte(chunks[0].Data, 11, 1))),
        };
    }

    private static byte[]? Rewrite(byte[] png)
    {
        if (!NarrowPngInflater.TryRewrite(png, out var rented, out var length))
        {
            Assert.Null(rented);
            return null;
        }

        var copy = rented.AsSpan(0, length).ToArray();
        ArrayPool<byte>.Shared.Return(rented!);
        return copy;
    }

    /// <summary>Whether the file's one IDAT holds a zlib stream of stored blocks only (BTYPE 00).</summary>
    private static bool IsStored(byte[] png)
    {
        var data = Chunks(png).Single(chunk => chunk.Type == "IDAT").Data;
        var position = 2;
        while (true)
        {
            if ((data[position] & 0b110) != 0)
            {
                return false;
            }

            var length = BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(position + 1));
            var final = (data[position] & 1) == 1;
            position += 5 + length;
            if (final)
            {
                return position + 4 == data.Length;
            }
        }
    }

    private static byte[] SkiaRgba(byte[] png)
    {
        var (result, rgba) = SkiaResult(png);
        Assert.Equal(SKCodecResult.Success, result);
        return rgba;
    }

    /// <summary>Skia's own verdict on a file, and its pixels as unpremultiplied RGBA, as the service asks for them.</summary>
    private static (SKCodecResult Result, byte[] Rgba) SkiaResult(byte[] png)
    {
        using var codec = SKCodec.Create(new SKMemoryStream(png), out var created);
        if (codec is null)
        {
            return (created, []);
        }

        using var bitmap = new SKBitmap(new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        var result = codec.GetPixels(bitmap.Info, bitmap.GetPixels());
        return (result, bitmap.Bytes);
    }

    private static byte[] Rgb(byte[] rgba)
    {
        var rgb = new byte[rgba.Length / 4 * 3];
        for (var i = 0; i < rgba.Length / 4; i++)
        {
            rgba.AsSpan(i * 4, 3).CopyTo(rgb.AsSpan(i * 3));
        }

        return rgb;
    }

    private static List<(string Type, byte[] Data)> Chunks(byte[] png)
    {
        var chunks = new List<(string, byte[])>();
        for (var position = 8; position + 12 <= png.Length;)
        {
            var length = (int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(position));
            chunks.Add((System.Text.Encoding.ASCII.GetString(png, position + 4, 4), png.AsSpan(position + 8, length).ToArray()));
            position += 12 + length;
        }

        return chunks;
    }

    /// <summary>The file with its chunks changed by <paramref name="change"/>, every checksum written anew.</summary>
    private static byte[] Rebuild(byte[] png, Action<List<(string Type, byte[] Data)>> change)
    {
        var chunks = Chunks(png);
        change(chunks);
        using var file = new MemoryStream();
        file.Write(png.AsSpan(0, 8));
        Span<byte> word = stackalloc byte[4];
        foreach (var (type, data) in chunks)
        {
            var typeBytes = System.Text.Encoding.ASCII.GetBytes(type);
            BinaryPrimitives.WriteUInt32BigEndian(word, (uint)data.Length);
            file.Write(word);
            file.Write(typeBytes);
            file.Write(data);
            BinaryPrimitives.WriteUInt32BigEndian(word, Crc32.HashToUInt32([.. typeBytes, .. data]));
            file.Write(word);
        }

        return file.ToArray();
    }

    private static void SplitImageData(List<(string Type, byte[] Data)> chunks)
    {
        var index = chunks.FindIndex(chunk => chunk.Type == "IDAT");
        var data = chunks[index].Data;
        var third = data.Length / 3;
        chunks.RemoveAt(index);
        chunks.InsertRange(index, [("IDAT", data[..third]), ("IDAT", data[third..(2 * third)]), ("IDAT", data[(2 * third)..])]);
    }

    private static byte[] Scanlines(int rowLength, int rows, int seed)
    {
        var scanlines = TestImages.Noise((rowLength + 1) * rows, seed);
        for (var row = 0; row < rows; row++)
        {
            scanlines[row * (rowLength + 1)] = 0;
        }

        return scanlines;
    }

    private static byte[] Compress(byte[] raw)
    {
        using var compressed = new MemoryStream();
        using (var zlib = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
        {
            zlib.Write(raw);
        }

        return compressed.ToArray();
    }

    private static byte[] Flip(byte[] data, int index)
    {
        var copy = (byte[])data.Clone();
        copy[index] ^= 0xFF;
        return copy;
    }

    private static byte[] WithByte(byte[] data, int index, byte value)
    {
        var copy = (byte[])data.Clone();
        copy[index] = value;
        return copy;
    }
}
