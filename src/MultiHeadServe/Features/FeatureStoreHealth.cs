using MultiHeadServe.Features.Store;
using MultiHeadServe.Models;

namespace MultiHeadServe.Features;

/// <summary>
/// Whether the feature store answers and holds what the models need, shared by the readiness check, the per-model
/// readiness routes and start-up. A check's answer is reused for a second, so readiness probes and clients polling
/// a model's readiness do not become load on the store. Thread-safe.
/// </summary>
/// <remarks>
/// The tables (Redis: hashes) and columns every store-backed manifest names are checked against the store: the
/// service reads production stores and never creates or fills them (<c>mhs features import</c> does), so what is
/// missing is reported, by model, table and column, and those models are unready until it appears. While something
/// is missing the tables are checked again with every check; once all are there, every <see cref="Recheck"/>.
/// </remarks>
public sealed class FeatureStoreHealth(IFeatureStore store, IFeatureStoreWriter backing, ModelRegistry registry, TimeProvider time) : IDisposable
{
    private static readonly TimeSpan Reuse = TimeSpan.FromSeconds(1);

    /// <summary>How often tables found complete are described again (a table dropped later is then reported).</summary>
    private static readonly TimeSpan Recheck = TimeSpan.FromSeconds(30);

    /// <summary>Budget of describing the tables: a SCAN of a large Redis keyspace may take a while.</summary>
    private static readonly TimeSpan DescribeTimeout = TimeSpan.FromSeconds(5);

    private readonly SemaphoreSlim _checking = new(1, 1);

    // One reference each, replaced whole: concurrent checks never see a report with another check's time.
    private volatile Checked? _last;
    private volatile Described? _tables;

    public string Kind => store.Kind;

    public void Dispose() => _checking.Dispose();

    public async Task<FeatureStoreReport> CheckAsync(CancellationToken cancellationToken)
    {
        if (_last is { } last && time.GetElapsedTime(last.Timestamp) < Reuse)
        {
            return last.Report;
        }

        await _checking.WaitAsync(cancellationToken);
        try
        {
            if (_last is { } fresh && time.GetElapsedTime(fresh.Timestamp) < Reuse)
            {
                return fresh.Report;
            }

            var reachable = await store.PingAsync(cancellationToken);
            if (reachable && (_tables is not { } tables || tables.Missing.Count > 0 || time.GetElapsedTime(tables.Timestamp) >= Recheck))
            {
                if (await DescribeAsync(cancellationToken) is { } missing)
                {
                    _tables = new Described(missing, time.GetTimestamp());
                }
            }

            var circuit = store is ResilientFeatureStore resilient ? resilient.CircuitState.ToString() : null;
            var report = new FeatureStoreReport(store.Kind, reachable, circuit, _tables?.Missing ?? []);
            _last = new Checked(report, time.GetTimestamp());
            return report;
        }
        finally
        {
            _checking.Release();
        }
    }

    private sealed record Checked(FeatureStoreReport Report, long Timestamp);

    private sealed record Described(IReadOnlyList<MissingFeatures> Missing, long Timestamp);

    /// <summary>A model is ready when it is loaded and warm and, if it reads the store, the store answers and holds its tables.</summary>
    public async Task<bool> IsReadyAsync(LoadedModel model, CancellationToken cancellationToken)
    {
        if (!model.Warm)
        {
            return false;
        }

        if (!UsesStore(model))
        {
            return true;
        }

        var report = await CheckAsync(cancellationToken);
        return report.Reachable && !report.Missing.Any(missing => missing.Model == model.Name);
    }

    /// <summary>Models whose features come from the store (the others serve through a store outage).</summary>
    public static bool UsesStore(LoadedModel model) => model.Manifest.Features.Source == FeatureSource.Store;

    /// <summary>What the store-backed models need and the store lacks; null when the store could not be asked.</summary>
    private async Task<IReadOnlyList<MissingFeatures>?> DescribeAsync(CancellationToken cancellationToken)
    {
        using var budget = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        budget.CancelAfter(DescribeTimeout);
        var missing = new List<MissingFeatures>();
        var described = new Dictionary<string, FeatureTableSchema?>(StringComparer.Ordinal);
        try
        {
            foreach (var model in registry.All.Where(UsesStore).OrderBy(m => m.Name, StringComparer.Ordinal))
            {
                foreach (var entity in model.Manifest.Features.Entities ?? [])
                {
                    if (!described.TryGetValue(entity.Table, out var schema))
                    {
                        try
                        {
                            schema = await backing.DescribeTableAsync(entity.Table, budget.Token);
                        }
                        catch (FeatureSchemaException exception)
                        {
                            // A table the store cannot serve (e.g. no single-column primary key).
                            missing.Add(new MissingFeatures(model.Name, entity.Table, entity.Columns, $"{model.Name}: {exception.Message}"));
                            continue;
                        }

                        described[entity.Table] = schema;
                    }

                    if (schema is null)
                    {
                        missing.Add(new MissingFeatures(model.Name, entity.Table, entity.Columns,
                            $"{model.Name}: the {backing.Kind} feature store has no table '{entity.Table}'{Where(entity.Table)}; load it with 'mhs features import'."));
                        continue;
                    }

                    var absent = entity.Columns.Where(column => !schema.Columns.Contains(column)).ToList();
                    if (absent.Count > 0)
                    {
                        missing.Add(new MissingFeatures(model.Name, entity.Table, absent,
                            $"{model.Name}: table '{entity.Table}'{Where(entity.Table)} in the {backing.Kind} feature store has no column(s) {string.Join(", ", absent)}."));
                    }
                }
            }
        }
        catch (Exception exception) when (!cancellationToken.IsCancellationRequested &&
            (exception is OperationCanceledException || TransientFailure.IsTransient(exception)))
        {
            // The store stopped answering halfway: the previous answer stands until it answers again.
            return null;
        }

        return missing;
    }

    private string Where(string table) =>
        backing is RedisFeatureStore redis ? $" (no hash at keys '{redis.Layout.PatternFor(table)}')" : "";
}

/// <param name="Kind">sqlite, postgres or redis.</param>
/// <param name="Reachable">The store answered a ping.</param>
/// <param name="Circuit">The circuit breaker's state.</param>
/// <param name="Missing">Tables and columns the store-backed models need and the store lacks (empty when all are there).</param>
public sealed record FeatureStoreReport(string Kind, bool Reachable, string? Circuit, IReadOnlyList<MissingFeatures> Missing);

/// <summary>What one model needs from the store and does not find there.</summary>
/// <param name="Model">The model that reads the table.</param>
/// <param name="Table">The entity table (Redis: the hashes of its key template).</param>
/// <param name="Columns">The missing columns; the whole table's when the table is missing.</param>
/// <param name="Message">The same, in words.</param>
public sealed record MissingFeatures(string Model, string Table, IReadOnlyList<string> Columns, string Message);
