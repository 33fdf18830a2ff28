using MultiHeadServe.Features.Store;

namespace MultiHeadServe.Tests.Features.Store;

/// <summary>
/// A stand-in backing store whose every attempt does what the test scripts: for unit tests of the
/// resilience decorator alone, where a real store cannot be made to fail on cue.
/// </summary>
internal sealed class ScriptedFeatureStore(Func<int, CancellationToken, Task<IReadOnlyList<float[]?>>> attempt) : IFeatureStore
{
    private int _attempts;

    /// <summary>Attempts that reached this store.</summary>
    public int Attempts => Volatile.Read(ref _attempts);

    public string Kind => "scripted";

    /// <summary>A store that never answers until cancelled.</summary>
    public static ScriptedFeatureStore Hanging() => new(async (_, token) =>
    {
        await Task.Delay(Timeout.Infinite, token);
        throw new InvalidOperationException("Unreachable.");
    });

    /// <summary>A store that never answers and ignores cancellation, like a driver waiting on a frozen server's socket.</summary>
    public static ScriptedFeatureStore Frozen() => new((_, _) => new TaskCompletionSource<IReadOnlyList<float[]?>>().Task);

    /// <summary>A store that fails every attempt with <paramref name="failure"/>.</summary>
    public static ScriptedFeatureStore Failing(Func<Exception> failure) => new((_, _) => Task.FromException<IReadOnlyList<float[]?>>(failure()));

    public async ValueTask<IReadOnlyList<float[]?>> GetRowsAsync(
        string table, IReadOnlyList<string> keys, IReadOnlyList<string> columns, CancellationToken cancellationToken) =>
        await attempt(Interlocked.Increment(ref _attempts), cancellationToken);

    public async ValueTask<IReadOnlyList<IReadOnlyList<float[]?>>> GetEntitiesAsync(
        IReadOnlyList<EntityLookup> lookups, CancellationToken cancellationToken) =>
        [await attempt(Interlocked.Increment(ref _attempts), cancellationToken)];

    public ValueTask<FeatureTableSchema?> DescribeTableAsync(string table, CancellationToken cancellationToken) =>
        ValueTask.FromResult<FeatureTableSchema?>(null);

    public async ValueTask<bool> PingAsync(CancellationToken cancellationToken)
    {
        await attempt(Interlocked.Increment(ref _attempts), cancellationToken);
        return true;
    }
}
