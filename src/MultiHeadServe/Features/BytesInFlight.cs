namespace MultiHeadServe.Features;

/// <summary>
/// A count of bytes that requests in flight hold together, against a limit: taken before the memory exists, given
/// back once when it is released. The one counter behind <see cref="BodyBudget"/> and <see cref="TensorBudget"/>.
/// </summary>
/// <remarks>Thread-safe and lock-free.</remarks>
internal sealed class BytesInFlight
{
    private long _held;

    /// <summary>The bytes held now.</summary>
    public long Held => Interlocked.Read(ref _held);

    /// <summary>Takes <paramref name="bytes"/> when the bytes held stay within <paramref name="limit"/>; otherwise takes nothing.</summary>
    /// <param name="bytes">The bytes to take.</param>
    /// <param name="limit">The most that may be held together.</param>
    /// <param name="held">The bytes held when the take was refused (0 when it succeeded).</param>
    public bool TryTake(long bytes, long limit, out long held)
    {
        while (true)
        {
            held = Interlocked.Read(ref _held);
            if (held + bytes > limit)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _held, held + bytes, held) == held)
            {
                held = 0;
                return true;
            }
        }
    }

    /// <summary>Gives back <paramref name="bytes"/> taken before.</summary>
    public void Give(long bytes) => Interlocked.Add(ref _held, -bytes);

    /// <summary>Bytes as the budgets' messages state them ("1.5 MB").</summary>
    public static string Megabytes(long bytes) => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{bytes / 1048576.0:0.#} MB");
}
