namespace MultiHeadServe.Features.Store;

/// <summary>
/// The feature store did not answer in time: every retry failed, the time budget ran out, or the
/// circuit breaker is open. The service answers 503 with a <c>Retry-After</c> header.
/// </summary>
/// <remarks>
/// Not thrown when the caller cancels (that is an <see cref="OperationCanceledException"/>), nor for
/// errors that retrying cannot fix (an unknown column, bad arguments).
/// </remarks>
public sealed class FeatureStoreUnavailableException : Exception
{
    /// <summary>The wait suggested when the store failed but no break is in force.</summary>
    public static readonly TimeSpan DefaultRetryAfter = TimeSpan.FromSeconds(1);

    public FeatureStoreUnavailableException()
        : this("The feature store is unavailable.")
    {
    }

    public FeatureStoreUnavailableException(string message)
        : this(message, DefaultRetryAfter, innerException: null)
    {
    }

    public FeatureStoreUnavailableException(string message, Exception innerException)
        : this(message, DefaultRetryAfter, innerException)
    {
    }

    /// <param name="message">What failed, for logs and the problem details.</param>
    /// <param name="retryAfter">How long a client should wait; clamped to at least zero.</param>
    /// <param name="innerException">The last failure, if any.</param>
    public FeatureStoreUnavailableException(string message, TimeSpan retryAfter, Exception? innerException)
        : base(message, innerException)
    {
        RetryAfter = retryAfter < TimeSpan.Zero ? TimeSpan.Zero : retryAfter;
    }

    /// <summary>
    /// How long to wait before trying again: the remaining break when the circuit is open,
    /// otherwise <see cref="DefaultRetryAfter"/>.
    /// </summary>
    public TimeSpan RetryAfter { get; }

    /// <summary><see cref="RetryAfter"/> in whole seconds, rounded up and at least 1: the value of a
    /// <c>Retry-After</c> header.</summary>
    public int RetryAfterSeconds => (int)Math.Min(int.MaxValue, Math.Max(1, Math.Ceiling(RetryAfter.TotalSeconds)));
}
