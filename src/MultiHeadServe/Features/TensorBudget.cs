using System.Buffers;
using Microsoft.Extensions.Options;

namespace MultiHeadServe.Features;

/// <summary>
/// Bounds the memory that the feature tensors of requests in flight hold together (Serve:MaxTensorBytesInFlight).
/// An image request is small on the wire and large as a tensor: 256 JPEGs of 22 KB become 154 MB of float32 rows of a
/// 224x224 model, and requests hold their tensors while they queue. Without a bound, eight such requests at once
/// held 1.2 GB (2 GB resident), enough to end a 2 GiB container. A request's rows are counted before anything
/// the size of its tensor exists: one that can never fit is a 413, one that does not fit now a 429 with Retry-After.
/// </summary>
/// <remarks>Thread-safe. Large tensors are not pooled: what a burst allocated goes back to the collector afterwards.</remarks>
public sealed class TensorBudget(IOptions<ServeOptions> options)
{
    /// <summary>Tensors up to this many floats (4 MiB) come from the shared pool; larger ones are allocated and left to the collector.</summary>
    internal const int PooledFloats = 1 << 20;

    private readonly BytesInFlight _held = new();

    /// <summary>The bytes all requests' tensors may hold together.</summary>
    public long Total => options.Value.MaxTensorBytesInFlight;

    /// <summary>The bytes held now.</summary>
    public long Held => _held.Held;

    /// <summary>A tensor of <paramref name="rows"/> rows of <paramref name="rowLength"/> floats, counted against the budget until disposed.</summary>
    /// <exception cref="FeatureRequestException">413 when it can never fit; 429 (with Retry-After) when it does not fit now.</exception>
    public TensorLease Rent(int rows, int rowLength, string field)
    {
        var floats = Math.Max(1, (long)rows * rowLength);
        var bytes = floats * sizeof(float);
        var total = Total;
        if (bytes > total)
        {
            var fits = Math.Max(1, total / ((long)rowLength * sizeof(float)));
            throw new FeatureRequestException(StatusCodes.Status413PayloadTooLarge, "Payload too large", field,
                $"These {rows} rows are {Megabytes(bytes)} as the model's input tensor; the service holds at most {Megabytes(total)} of request tensors " +
                $"(Serve:MaxTensorBytesInFlight): send at most {fits} rows in one request.");
        }

        if (!_held.TryTake(bytes, total, out var held))
        {
            throw new FeatureRequestException(StatusCodes.Status429TooManyRequests, "Too many requests", field,
                $"The requests in flight hold {Megabytes(held)} of input tensors and these rows need {Megabytes(bytes)} more, past the limit of " +
                $"{Megabytes(total)} (Serve:MaxTensorBytesInFlight); retry shortly.", TimeSpan.FromSeconds(1));
        }

        try
        {
            var buffer = floats <= PooledFloats ? ArrayPool<float>.Shared.Rent((int)floats) : GC.AllocateUninitializedArray<float>((int)floats);
            return new TensorLease(this, buffer, bytes);
        }
        catch
        {
            _held.Give(bytes);
            throw;
        }
    }

    internal void Release(float[] buffer, long bytes)
    {
        if (buffer.Length <= PooledFloats)
        {
            ArrayPool<float>.Shared.Return(buffer);
        }

        _held.Give(bytes);
    }

    private static string Megabytes(long bytes) => BytesInFlight.Megabytes(bytes);
}

/// <summary>A request's tensor buffer and its share of the <see cref="TensorBudget"/>; both go back once, on dispose.</summary>
public sealed class TensorLease : IDisposable
{
    private readonly TensorBudget _budget;
    private readonly long _bytes;
    private float[]? _buffer;

    internal TensorLease(TensorBudget budget, float[] buffer, long bytes)
    {
        _budget = budget;
        _buffer = buffer;
        _bytes = bytes;
    }

    /// <summary>At least the rows asked for (a pooled buffer may be longer).</summary>
    public float[] Buffer => _buffer ?? throw new ObjectDisposedException(nameof(TensorLease));

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _buffer, null) is { } buffer)
        {
            _budget.Release(buffer, _bytes);
        }
    }
}
