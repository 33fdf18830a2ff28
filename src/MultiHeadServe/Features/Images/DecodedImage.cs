using System.Buffers;

namespace MultiHeadServe.Features.Images;

/// <summary>
/// A decoded image: 8-bit RGB, interleaved (<c>R G B R G B …</c>), rows top to bottom, no row padding, so
/// <see cref="Pixels"/> holds exactly <c>Width * Height * 3</c> bytes. Images decoded on the request path hold a
/// pooled buffer that goes back to the pool on <see cref="Dispose"/>, once the image is written into its tensor.
/// </summary>
public sealed class DecodedImage : IDisposable
{
    private readonly byte[] _buffer;
    private readonly bool _pooled;
    private int _disposed;

    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    /// <param name="rgb">The pixels; owned by this instance once constructed (do not mutate a shared one).</param>
    public DecodedImage(int width, int height, byte[] rgb)
        : this(width, height, rgb, pooled: false)
    {
    }

    private DecodedImage(int width, int height, byte[] buffer, bool pooled)
    {
        Width = width;
        Height = height;
        _buffer = buffer;
        _pooled = pooled;
    }

    public int Width { get; }

    public int Height { get; }

    /// <summary>Exactly <c>Width * Height * 3</c> bytes (or what the unpooled constructor was given).</summary>
    public ReadOnlySpan<byte> Pixels
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed != 0, this);
            return _pooled ? _buffer.AsSpan(0, Width * Height * 3) : _buffer;
        }
    }

    /// <summary>The pixels as an array of their own length (a copy for a pooled image).</summary>
    public byte[] Rgb => _pooled ? Pixels.ToArray() : _buffer;

    /// <summary>An image of the given size over a pooled buffer, for a decoder to fill through <see cref="Writable"/>.</summary>
    internal static DecodedImage Rent(int width, int height) =>
        new(width, height, ArrayPool<byte>.Shared.Rent(width * height * 3), pooled: true);

    internal Span<byte> Writable => _buffer.AsSpan(0, Width * Height * 3);

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0 && _pooled)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
        }
    }
}
