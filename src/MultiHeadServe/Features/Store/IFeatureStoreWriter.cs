namespace MultiHeadServe.Features.Store;

/// <summary>
/// A backing feature store that can also create tables: what <c>mhs features import</c> (and the embedded store's
/// demo seeding) talks to; the service never writes to a production store. The resilient decorator does not
/// implement it, because an import must not be cut short by the per-request timeout.
/// </summary>
public interface IFeatureStoreWriter : IFeatureStore
{
    /// <summary>
    /// Creates <paramref name="schema"/>'s table and writes <paramref name="rows"/> into it in one
    /// transaction: either the whole table appears or nothing changes.
    /// </summary>
    /// <param name="schema">The table to create; in SQL the key column becomes a text primary key and the others
    /// real columns; in Redis each row becomes a hash at its key template's key.</param>
    /// <param name="rows">The rows; enumerated only when the table is written. An exception thrown
    /// while enumerating rolls the transaction back and propagates.</param>
    /// <param name="replace">When the table already exists: <see langword="false"/> leaves it as it
    /// is (<see cref="FeatureSeedOutcome.Skipped"/>); <see langword="true"/> drops and rewrites it.</param>
    /// <param name="cancellationToken">Cancels the write (rolled back).</param>
    /// <remarks>The existence check runs inside the transaction, so concurrent seeders (several
    /// replicas starting together) write the table once.</remarks>
    ValueTask<FeatureSeedResult> WriteTableAsync(
        FeatureTableSchema schema,
        IAsyncEnumerable<FeatureRow> rows,
        bool replace,
        CancellationToken cancellationToken);
}
