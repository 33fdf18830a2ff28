using System.Buffers.Binary;
using System.IO.Compression;

namespace MultiHeadServe.Tests.Features.Images;

/// <summary>
/// Real PNG files for tests, assembled chunk by chunk (IHDR, PLTE, tRNS, IDAT, IEND) with zlib, so
/// every kind the decoder must handle can be written exactly: gray, RGB, palette (with or without
/// tRNS), gray+alpha, RGBA, in 8 or 16 bits, and headers declaring absurd sizes.
/// </summary>
internal static class PngFixture
{
    /// <summary>IHDR colour types (PNG spec §11.2.2).</summary>
    public const byte ColorTypeGray = 0;
    public const byte ColorTypeRgb = 2;
    public const byte ColorTypePalette = 3;
    public const byte ColorTypeGrayAlpha = 4;
    public const byte ColorTypeRgba = 6;

    private static readonly uint[] CrcTable = BuildCrcTable();

    private static ReadOnlySpan<byte> Signature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>
    /// An 8-bit PNG of packed samples: 1 per pixel for gray and palette (an index), 2 for gray+alpha,
    /// 3 for RGB, 4 for RGBA. A palette image takes its entries in <paramref name="palette"/> (3 bytes
    /// each) and, optionally, one alpha per entry in <paramref name="paletteAlpha"/> (a tRNS chunk).
    /// </summary>
    public static byte[] Write(
        int width, int height, byte colorType, ReadOnlySpan<byte> pixels, ReadOnlySpan<byte> palette = default, ReadOnlySpan<byte> paletteAlpha = default)
    {
        var rowLength = width * SamplesPerPixel(colorType);
        if (pixels.Length != rowLength * height)
        {
            throw new ArgumentException($"a {width}x{height} image of colour type {colorType} needs {rowLength * height} bytes, not {pixels.Length}", nameof(pixels));
        }

        var chunks = new List<(string Type, byte[] Data)>();
        if (colorType == ColorTypePalette)
        {
            chunks.Add(("PLTE", palette.ToArray()));
            if (!paletteAlpha.IsEmpty)
            {
                chunks.Add(("tRNS", paletteAlpha.ToArray()));
            }
        }

        return Assemble((uint)width, (uint)height, 8, colorType, Scanlines(pixels, rowLength, height), chunks);
    }

    /// <summary>An 8-bit RGB PNG with a gAMA chunk declaring <paramref name="gamma"/> (as PNG stores it: gamma × 100000).</summary>
    public static byte[] WriteWithGamma(int width, int height, ReadOnlySpan<byte> rgb, uint gamma)
    {
        var data = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(data, gamma);
        return Assemble((uint)width, (uint)height, 8, ColorTypeRgb, Scanlines(rgb, width * 3, height), [("gAMA", data)]);
    }

    /// <summary>A 16-bit PNG (gray, gray+alpha, RGB or RGBA) from samples in 0..65535, written big-endian as PNG stores them; no gAMA chunk, as most tools write them.</summary>
    public static byte[] Write16(int width, int height, byte colorType, ReadOnlySpan<ushort> samples)
    {
        var rowSamples = width * SamplesPerPixel(colorType);
        if (samples.Length != rowSamples * height || colorType == ColorTypePalette)
        {
            throw new ArgumentException($"a 16-bit {width}x{height} image of colour type {colorType} needs {rowSamples * height} samples", nameof(samples));
        }

        var bytes = new byte[samples.Length * 2];
        for (var i = 0; i < samples.Length; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(i * 2), samples[i]);
        }

        return Assemble((uint)width, (uint)height, 16, colorType, Scanlines(bytes, rowSamples * 2, height), []);
    }

    /// <summary>A non-interlaced PNG from raw scanlines (each already prefixed with its filter byte), whatever the header claims.</summary>
    public static byte[] FromChunks(uint width, uint height, byte bitDepth, byte colorType, ReadOnlySpan<byte> scanlines) =>
        Assemble(width, height, bitDepth, colorType, scanlines.ToArray(), []);

    /// <summary>The colour type byte of the IHDR chunk, to prove what kind of PNG a fixture is.</summary>
    public static byte ColorType(byte[] png) => png[25];

    /// <summary>The bit depth byte of the IHDR chunk.</summary>
    public static byte BitDepth(byte[] png) => png[24];

    /// <summary>The offset of the first byte of the first IDAT chunk's data.</summary>
    public static int IdatDataOffset(byte[] png)
    {
        var offset = 8;
        while (offset + 8 <= png.Length)
        {
            var length = (int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(offset));
            if (png.AsSpan(offset + 4, 4).SequenceEqual("IDAT"u8))
            {
                return offset + 8;
            }

            offset += 12 + length;
        }

        throw new InvalidOperationException("no IDAT chunk");
    }

    private static int SamplesPerPixel(byte colorType) => colorType switch
    {
        ColorTypeGray or ColorTypePalette => 1,
        ColorTypeGrayAlpha => 2,
        ColorTypeRgb => 3,
        ColorTypeRgba => 4,
        _ => throw new ArgumentOutOfRangeException(nameof(colorType), colorType, "not a PNG colour type"),
    };

    /// <summary>Each row prefixed with filter type 0 (None).</summary>
    private static byte[] Scanlines(ReadOnlySpan<byte> rows, int rowLength, int height)
    {
        var scanlines = new byte[(rowLength + 1) * height];
        for (var y = 0; y < height; y++)
        {
            rows.Slice(y * rowLength, rowLength).CopyTo(scanlines.AsSpan((y * (rowLength + 1)) + 1));
        }

        return scanlines;
    }

    private static byte[] Assemble(uint width, uint height, byte bitDepth, byte colorType, byte[] scanlines, List<(string Type, byte[] Data)> beforeData)
    {
        var header = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(header, width);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), height);
        header[8] = bitDepth;
        header[9] = colorType;

        using var compressed = new MemoryStream();
        using (var zlib = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
        {
            zlib.Write(scanlines);
        }

        using var file = new MemoryStream();
        file.Write(Signature);
        WriteChunk(file, "IHDR"u8, header);
        foreach (var (type, data) in beforeData)
        {
            WriteChunk(file, System.Text.Encoding.ASCII.GetBytes(type), data);
        }

        WriteChunk(file, "IDAT"u8, compressed.ToArray());
        WriteChunk(file, "IEND"u8, []);
        return file.ToArray();
    }

    private static void WriteChunk(Stream file, ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(word, (uint)data.Length);
        file.Write(word);
        file.Write(type);
        file.Write(data);
        BinaryPrimitives.WriteUInt32BigEndian(word, Crc(type, data));
        file.Write(word);
    }

    // CRC-32 (ISO 3309, reflected polynomial 0xEDB88320) over the chunk type and data, as PNG requires.
    private static uint Crc(ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in type)
        {
            crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        }

        foreach (var b in data)
        {
            crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        }

        return crc ^ 0xFFFFFFFFu;
    }

    private static uint[] BuildCrcTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            var c = n;
            for (var k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            }

            table[n] = c;
        }

        return table;
    }
}
