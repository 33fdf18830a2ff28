namespace MultiHeadServe.Features.Images;

/// <summary>
/// Bounds on what <see cref="ImageDecoder"/> accepts. They are checked against the dimensions the
/// file declares, before any pixel memory is allocated, so a tiny file claiming 100000x100000
/// pixels (a decompression bomb) costs nothing.
/// </summary>
/// <remarks>Immutable and thread-safe. Bindable from configuration (init-only properties).</remarks>
public sealed record ImageDecodeLimits
{
    /// <summary>4096x4096: well above what vision models take, far below what would hurt the process.</summary>
    public static ImageDecodeLimits Default { get; } = new();

    /// <summary>The widest image accepted, in pixels. Must be positive.</summary>
    public int MaxWidth { get; init; } = 4096;

    /// <summary>The tallest image accepted, in pixels. Must be positive.</summary>
    public int MaxHeight { get; init; } = 4096;

    /// <summary>Throws when the limits themselves are unusable (a configuration error, not a bad request).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A limit is not positive, or the largest image they allow would not fit in one array.</exception>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxWidth);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxHeight);

        // Decoding may go through a 4-byte-per-pixel buffer (RGBA) before dropping alpha.
        if ((long)MaxWidth * MaxHeight * 4 > Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(
                nameof(MaxWidth), $"{MaxWidth}x{MaxHeight} is more than one array can hold; lower MaxWidth or MaxHeight.");
        }
    }

    internal bool Allows(long width, long height) => width <= MaxWidth && height <= MaxHeight;

    /// <summary>The pixels every image of one request may still decode to, together; null: no such budget.</summary>
    internal PixelBudget? Budget { get; init; }
}

/// <summary>
/// A request's pixel budget: decoding costs CPU by the pixel, and the per-image size limit alone lets one body of
/// small, highly compressible images (a 65 KB PNG can hold 4096x4096 pixels) ask for minutes of work. Each image's
/// pixels are taken from the budget after its header is read and before anything is decoded.
/// </summary>
internal sealed class PixelBudget(long pixels)
{
    private long _remaining = pixels;

    public long Total { get; } = pixels;

    /// <summary>Takes <paramref name="pixels"/> from what remains, or nothing and false when they do not fit.</summary>
    public bool TryTake(long pixels)
    {
        if (pixels > _remaining)
        {
            return false;
        }

        _remaining -= pixels;
        return true;
    }
}
