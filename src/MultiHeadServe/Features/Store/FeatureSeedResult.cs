namespace MultiHeadServe.Features.Store;

/// <summary>What seeding did with a table.</summary>
public enum FeatureSeedOutcome
{
    /// <summary>The table did not exist and was created.</summary>
    Created,

    /// <summary>The table existed and was dropped and rewritten (forced seeding).</summary>
    Replaced,

    /// <summary>The table existed and was left untouched.</summary>
    Skipped,
}

/// <summary>The result of seeding one table.</summary>
/// <param name="Table">The table name.</param>
/// <param name="Outcome">Created, replaced or skipped.</param>
/// <param name="RowCount">Rows written; 0 when skipped.</param>
public sealed record FeatureSeedResult(string Table, FeatureSeedOutcome Outcome, long RowCount);
