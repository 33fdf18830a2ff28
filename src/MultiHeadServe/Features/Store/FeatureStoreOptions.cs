namespace MultiHeadServe.Features.Store;

/// <summary>
/// The feature store's configuration, bound from the <c>FeatureStore</c> section.
/// </summary>
/// <remarks>
/// <see cref="TimeoutMilliseconds"/> is the <em>overall</em> budget of one lookup, retries and
/// back-off delays included: the figure a client's latency depends on. An optional per-attempt
/// timeout (<see cref="FeatureStoreRetryOptions.AttemptTimeoutMilliseconds"/>) leaves room for a
/// retry when one attempt hangs.
/// </remarks>
public sealed record FeatureStoreOptions
{
    /// <summary>The configuration section these options bind to.</summary>
    public const string SectionName = "FeatureStore";

    /// <summary>The SQLite provider name.</summary>
    public const string Sqlite = "sqlite";

    /// <summary>The PostgreSQL provider name.</summary>
    public const string Postgres = "postgres";

    /// <summary>The Redis provider name.</summary>
    public const string Redis = "redis";

    /// <summary>
    /// <c>sqlite</c>, <c>postgres</c> or <c>redis</c>. When unset: <c>postgres</c> if
    /// <see cref="PostgresConnectionString"/> is set, else <c>redis</c> if <see cref="RedisConfiguration"/> is set,
    /// otherwise <c>sqlite</c>.
    /// </summary>
    public string? Provider { get; set; }

    /// <summary>The SQLite database file; a relative path is relative to the content root.</summary>
    public string SqlitePath { get; set; } = "data/features.db";

    /// <summary>An Npgsql connection string; selects PostgreSQL when <see cref="Provider"/> is unset.</summary>
    public string? PostgresConnectionString { get; set; }

    /// <summary>A StackExchange.Redis configuration string (e.g. <c>redis:6379,password=…</c>); selects Redis
    /// when <see cref="Provider"/> and <see cref="PostgresConnectionString"/> are unset.</summary>
    public string? RedisConfiguration { get; set; }

    /// <summary>Where entities live in Redis: key templates, for every table or per table.</summary>
    public RedisKeyLayout RedisKeys { get; set; } = new();

    /// <summary>Overall budget of one lookup, retries included. Default 200 ms.</summary>
    public int TimeoutMilliseconds { get; set; } = 200;

    /// <summary>
    /// Calls given up on past their budget that the store has not yet answered, each of which may hold a connection:
    /// at this many, and none answered since the last was abandoned, further calls fail at once (503) instead of
    /// piling connections onto a store that does not answer, which it would all take at once when it comes back. The
    /// circuit breaker's trial call still goes through, so recovery is found by a real call. Default 16.
    /// </summary>
    public int MaxAbandonedCalls { get; set; } = 16;

    /// <summary>Retries of transient failures.</summary>
    public FeatureStoreRetryOptions Retry { get; set; } = new();

    /// <summary>When to stop calling a failing store for a while.</summary>
    public FeatureStoreCircuitBreakerOptions CircuitBreaker { get; set; } = new();

    /// <summary>The provider in force: <see cref="Sqlite"/>, <see cref="Postgres"/> or <see cref="Redis"/>, after defaults.</summary>
    /// <exception cref="InvalidOperationException"><see cref="Provider"/> names none of them.</exception>
    public string ResolveProvider()
    {
        if (string.IsNullOrWhiteSpace(Provider))
        {
            return !string.IsNullOrWhiteSpace(PostgresConnectionString) ? Postgres
                : !string.IsNullOrWhiteSpace(RedisConfiguration) ? Redis
                : Sqlite;
        }

        foreach (var known in (string[])[Sqlite, Postgres, Redis])
        {
            if (string.Equals(Provider.Trim(), known, StringComparison.OrdinalIgnoreCase))
            {
                return known;
            }
        }

        throw new InvalidOperationException($"{SectionName}:Provider is '{Provider}'; expected '{Sqlite}', '{Postgres}' or '{Redis}'.");
    }

    /// <summary>Every problem with these options, phrased with its configuration key; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        string? provider = null;
        try
        {
            provider = ResolveProvider();
        }
        catch (InvalidOperationException exception)
        {
            errors.Add(exception.Message);
        }

        if (provider == Sqlite && string.IsNullOrWhiteSpace(SqlitePath))
        {
            errors.Add($"{SectionName}:SqlitePath is required for the sqlite provider.");
        }

        if (provider == Postgres && string.IsNullOrWhiteSpace(PostgresConnectionString))
        {
            errors.Add($"{SectionName}:PostgresConnectionString is required for the postgres provider.");
        }

        if (provider == Redis)
        {
            if (string.IsNullOrWhiteSpace(RedisConfiguration))
            {
                errors.Add($"{SectionName}:RedisConfiguration is required for the redis provider.");
            }

            if (RedisKeys is null)
            {
                errors.Add($"{SectionName}:RedisKeys is required for the redis provider.");
            }
            else
            {
                errors.AddRange(RedisKeys.Validate($"{SectionName}:RedisKeys"));
            }
        }

        // The lower bounds are the resilience library's own limits.
        Check(TimeoutMilliseconds is >= 10 and <= 600_000, "TimeoutMilliseconds must be between 10 and 600000.");
        Check(MaxAbandonedCalls is >= 1 and <= 100_000, "MaxAbandonedCalls must be between 1 and 100000.");
        if (Retry is null)
        {
            errors.Add($"{SectionName}:Retry is required.");
        }
        else
        {
            Check(Retry.MaxAttempts is >= 1 and <= 10, "Retry:MaxAttempts must be between 1 and 10.");
            Check(Retry.BaseDelayMilliseconds is >= 0 and <= 60_000, "Retry:BaseDelayMilliseconds must be between 0 and 60000.");
            Check(Retry.AttemptTimeoutMilliseconds is 0 or (>= 10 and <= 600_000), "Retry:AttemptTimeoutMilliseconds must be 0 (none) or between 10 and 600000.");
        }

        if (CircuitBreaker is null)
        {
            errors.Add($"{SectionName}:CircuitBreaker is required.");
        }
        else
        {
            Check(CircuitBreaker.FailureRatio is > 0 and <= 1, "CircuitBreaker:FailureRatio must be greater than 0 and at most 1.");
            Check(CircuitBreaker.MinimumThroughput >= 2, "CircuitBreaker:MinimumThroughput must be at least 2.");
            Check(CircuitBreaker.SamplingDurationSeconds is >= 0.5 and <= 86_400, "CircuitBreaker:SamplingDurationSeconds must be between 0.5 and 86400.");
            Check(CircuitBreaker.BreakDurationSeconds is >= 0.5 and <= 86_400, "CircuitBreaker:BreakDurationSeconds must be between 0.5 and 86400.");
        }

        return errors;

        void Check(bool valid, string message)
        {
            if (!valid)
            {
                errors.Add($"{SectionName}:{message}");
            }
        }
    }
}

/// <summary>Retries of transient store failures (broken connections, timeouts, busy databases).</summary>
public sealed record FeatureStoreRetryOptions
{
    /// <summary>Attempts in all, the first included; 1 disables retrying. Default 3.</summary>
    public int MaxAttempts { get; set; } = 3;

    /// <summary>The first back-off delay; later ones grow exponentially, with jitter. Default 10 ms.</summary>
    public int BaseDelayMilliseconds { get; set; } = 10;

    /// <summary>Budget of a single attempt, so a hung attempt leaves time for a retry; 0 (the
    /// default) means only the overall timeout applies.</summary>
    public int AttemptTimeoutMilliseconds { get; set; }
}

/// <summary>
/// The circuit breaker: when at least <see cref="FailureRatio"/> of the attempts within
/// <see cref="SamplingDurationSeconds"/> fail (and there were at least
/// <see cref="MinimumThroughput"/>), calls fail fast for <see cref="BreakDurationSeconds"/>, after
/// which one trial call decides whether to close it again.
/// </summary>
public sealed record FeatureStoreCircuitBreakerOptions
{
    /// <summary>Failing share of attempts that opens the circuit. Default 0.5.</summary>
    public double FailureRatio { get; set; } = 0.5;

    /// <summary>Attempts needed in the sampling window before the ratio counts. Default 10.</summary>
    public int MinimumThroughput { get; set; } = 10;

    /// <summary>The sliding window the ratio is measured over. Default 10 s.</summary>
    public double SamplingDurationSeconds { get; set; } = 10;

    /// <summary>How long an open circuit fails fast; the <c>Retry-After</c> clients see. Default 5 s.</summary>
    public double BreakDurationSeconds { get; set; } = 5;
}
