using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;

namespace MultiHeadServe.Features.Images;

/// <summary>
/// Inflates the image data of a PNG with narrow rows in one piece and returns the same PNG with that data
/// stored (deflate's uncompressed blocks), which Skia then decodes several times faster.
/// </summary>
/// <remarks>
/// <para>
/// Why: libpng inflates one row at a time into a buffer the size of that row, and zlib only uses its
/// fast decoding loop while at least 258 bytes of output room remain. A row shorter than that (a 64x64 RGB
/// image has 193-byte rows) is inflated entirely by zlib's slow loop: decoding such an image took 70 µs here,
/// most of it inflating. Inflating the whole stream at once with the runtime's zlib and letting Skia copy
/// stored blocks takes about 40 µs. Rows of 258 bytes or more gain nothing (measured: a 224x224 RGB image
/// decodes 5% slower rewritten), so they are left alone.
/// </para>
/// <para>
/// The pixels cannot differ: the inflated bytes are the ones libpng would have inflated, and Skia still
/// does everything else (filters, bit depths, palettes, transparency). The rewrite is only an optimisation,
/// so anything unusual — interlacing, image data split by other chunks, a checksum that does not match, a
/// deflate stream that is corrupt, short or long — makes it decline, and Skia decodes the original file
/// and reports what is wrong with it exactly as it would have without this class.
/// </para>
/// <para>
/// Call it only after the image's dimensions have passed the request's limits: it allocates the inflated
/// size, which the header declares.
/// </para>
/// </remarks>
internal static class NarrowPngInflater
{
    /// <summary>Rows (with their filter byte) from this length on reach zlib's fast loop; see the remarks.</summary>
    private const int FastLoopOutput = 258;

    private const int SignatureLength = 8;

    /// <summary>Length, type and checksum around a chunk's data.</summary>
    private const int ChunkOverhead = 12;

    /// <summary>The most one stored deflate block holds.</summary>
    private const int StoredBlockLength = ushort.MaxValue;

    /// <summary>The largest prime below 2^16, Adler-32's modulus (RFC 1950).</summary>
    private const uint AdlerModulus = 65521;

    /// <summary>How many bytes Adler-32's sums take before they must be reduced to stay within 32 bits.</summary>
    private const int AdlerBlock = 5552;

    /// <summary>
    /// The PNG file <paramref name="png"/> with its image data stored instead of compressed, in a rented
    /// array the caller returns to <see cref="ArrayPool{T}.Shared"/>; or false when the file is not one
    /// this applies to or not one it can read, and the original should be decoded as it is.
    /// </summary>
    /// <param name="png">A file that starts with the PNG signature.</param>
    /// <param name="rewritten">The rented array holding the rewritten file, or null.</param>
    /// <param name="length">The rewritten file's length in <paramref name="rewritten"/>.</param>
    public static bool TryRewrite(ReadOnlySpan<byte> png, out byte[]? rewritten, out int length)
    {
        rewritten = null;
        length = 0;
        if (!TryMeasure(png, out var inflatedLength, out var idat))
        {
            return false;
        }

        // At least one block: a valid header never declares an empty image.
        var blocks = (inflatedLength + StoredBlockLength - 1) / StoredBlockLength;
        var zlibLength = 2 + inflatedLength + (5 * blocks) + 4;
        // The file without its IDAT chunks, and one IDAT chunk holding the stored stream.
        var buffer = ArrayPool<byte>.Shared.Rent(png.Length - idat.Length + ChunkOverhead + zlibLength);
        try
        {
            // Everything before the first IDAT, then one IDAT holding the stored stream, then everything after the last.
            var output = buffer.AsSpan();
            var written = idat.Start;
            png[..written].CopyTo(output);

            var chunk = output[written..];
            BinaryPrimitives.WriteInt32BigEndian(chunk, zlibLength);
            "IDAT"u8.CopyTo(chunk[4..]);
            if (!TryWriteStored(idat, png, inflatedLength, chunk.Slice(8, zlibLength)))
            {
                ArrayPool<byte>.Shared.Return(buffer);
                return false;
            }

            BinaryPrimitives.WriteUInt32BigEndian(chunk[(8 + zlibLength)..], Crc32.HashToUInt32(chunk.Slice(4, 4 + zlibLength)));
            written += ChunkOverhead + zlibLength;

            var after = png[(idat.Start + idat.Length)..];
            after.CopyTo(output[written..]);
            written += after.Length;

            rewritten = buffer;
            length = written;
            return true;
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    /// <summary>
    /// Reads the header and finds the image data: true only for a well-formed, non-interlaced PNG with rows
    /// too narrow for zlib's fast loop, its IDAT chunks consecutive and their checksums right.
    /// </summary>
    private static bool TryMeasure(ReadOnlySpan<byte> png, out int inflatedLength, out ImageData idat)
    {
        inflatedLength = 0;
        idat = default;

        // IHDR comes first: width, height, bit depth, colour type, compression, filter, interlace.
        var position = SignatureLength;
        if (!TryReadChunk(png, position, out var type, out var data) || !type.SequenceEqual("IHDR"u8) || data.Length != 13)
        {
            return false;
        }

        var width = BinaryPrimitives.ReadUInt32BigEndian(data);
        var height = BinaryPrimitives.ReadUInt32BigEndian(data[4..]);
        int bitDepth = data[8];
        var channels = data[9] switch
        {
            0 => 1, // grayscale
            2 => 3, // RGB
            3 => 1, // palette index
            4 => 2, // grayscale and alpha
            6 => 4, // RGBA
            _ => 0,
        };
        if (width == 0 || height == 0 || channels == 0 || bitDepth is not (1 or 2 or 4 or 8 or 16)
            || data[10] != 0 || data[11] != 0 || data[12] != 0)
        {
            return false;
        }

        // Each row is its filter byte and its pixels, rounded up to whole bytes.
        var rowLength = 1 + ((((long)width * channels * bitDepth) + 7) / 8);
        var total = rowLength * height;
        if (rowLength >= FastLoopOutput || total > Array.MaxLength / 2)
        {
            return false;
        }

        position += ChunkOverhead + data.Length;
        var first = -1;
        var last = -1;
        var ended = false;
        while (!ended && TryReadChunk(png, position, out type, out data))
        {
            var chunkLength = ChunkOverhead + data.Length;
            if (type.SequenceEqual("IDAT"u8))
            {
                // Image data split by other chunks is not valid PNG: let Skia say so.
                if (last >= 0 && last != position)
                {
                    return false;
                }

                var crc = BinaryPrimitives.ReadUInt32BigEndian(png[(position + 8 + data.Length)..]);
                if (Crc32.HashToUInt32(png.Slice(position + 4, 4 + data.Length)) != crc)
                {
                    return false;
                }

                first = first < 0 ? position : first;
                last = position + chunkLength;
            }
            else
            {
                ended = type.SequenceEqual("IEND"u8);
            }

            position += chunkLength;
        }

        // A file cut short, or without image data, is for Skia to describe.
        if (!ended || first < 0)
        {
            return false;
        }

        inflatedLength = (int)total;
        idat = new ImageData(first, last - first);
        return true;
    }

    /// <summary>Inflates the IDAT chunks' stream into <paramref name="target"/> as a zlib stream of stored blocks.</summary>
    private static bool TryWriteStored(ImageData idat, ReadOnlySpan<byte> png, int inflatedLength, Span<byte> target)
    {
        // The compressed stream is the IDAT chunks' data one after another.
        var compressed = ArrayPool<byte>.Shared.Rent(idat.Length);
        try
        {
            var compressedLength = 0;
            var chunks = png.Slice(idat.Start, idat.Length);
            while (!chunks.IsEmpty)
            {
                var dataLength = BinaryPrimitives.ReadInt32BigEndian(chunks);
                chunks.Slice(8, dataLength).CopyTo(compressed.AsSpan(compressedLength));
                compressedLength += dataLength;
                chunks = chunks[(ChunkOverhead + dataLength)..];
            }

            if (compressedLength < 6)
            {
                return false;
            }

            // 0x78 0x01: deflate with a 32 KiB window, no dictionary, header check bits set.
            target[0] = 0x78;
            target[1] = 0x01;
            var blocks = target[2..^4];
            using var inflater = new ZLibStream(new MemoryStream(compressed, 0, compressedLength, writable: false), CompressionMode.Decompress);
            uint a = 1;
            uint b = 0;
            for (var remaining = inflatedLength; remaining > 0;)
            {
                var blockLength = Math.Min(StoredBlockLength, remaining);
                blocks[0] = (byte)(remaining == blockLength ? 1 : 0); // BFINAL on the last block; BTYPE 00, stored
                BinaryPrimitives.WriteUInt16LittleEndian(blocks[1..], (ushort)blockLength);
                BinaryPrimitives.WriteUInt16LittleEndian(blocks[3..], (ushort)~blockLength);
                var block = blocks.Slice(5, blockLength);
                if (inflater.ReadAtLeast(block, block.Length, throwOnEndOfStream: false) != block.Length)
                {
                    return false;
                }

                Adler(block, ref a, ref b);
                blocks = blocks[(5 + blockLength)..];
                remaining -= blockLength;
            }

            // The stream must end where the image does, with the checksum it carries for these bytes.
            Span<byte> beyond = stackalloc byte[1];
            if (inflater.Read(beyond) != 0
                || BinaryPrimitives.ReadUInt32BigEndian(compressed.AsSpan(compressedLength - 4)) != ((b << 16) | a))
            {
                return false;
            }

            BinaryPrimitives.WriteUInt32BigEndian(target[^4..], (b << 16) | a);
            return true;
        }
        catch (InvalidDataException)
        {
            return false;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(compressed);
        }
    }

    /// <summary>Adds <paramref name="data"/> to the running Adler-32 sums (RFC 1950 §9).</summary>
    private static void Adler(ReadOnlySpan<byte> data, ref uint a, ref uint b)
    {
        while (!data.IsEmpty)
        {
            var part = data[..Math.Min(AdlerBlock, data.Length)];
            foreach (var value in part)
            {
                a += value;
                b += a;
            }

            a %= AdlerModulus;
            b %= AdlerModulus;
            data = data[part.Length..];
        }
    }

    /// <summary>The chunk at <paramref name="position"/>, when the file holds all of it.</summary>
    private static bool TryReadChunk(ReadOnlySpan<byte> png, int position, out ReadOnlySpan<byte> type, out ReadOnlySpan<byte> data)
    {
        type = default;
        data = default;
        if (position > png.Length - ChunkOverhead)
        {
            return false;
        }

        var length = BinaryPrimitives.ReadUInt32BigEndian(png[position..]);
        if (length > (uint)(png.Length - position - ChunkOverhead))
        {
            return false;
        }

        type = png.Slice(position + 4, 4);
        data = png.Slice(position + 8, (int)length);
        return true;
    }

    /// <summary>Where the IDAT chunks are in the file: the offset of the first, and their length with their framing.</summary>
    private readonly record struct ImageData(int Start, int Length);
}
