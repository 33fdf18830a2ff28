namespace MultiHeadServe.Models;

/// <summary>
/// Which of a model's version folders are served, as Triton's <c>version_policy</c>: exactly one of
/// <c>{"latest": {"numVersions": n}}</c>, <c>{"specific": {"versions": [..]}}</c> or <c>{"all": {}}</c>.
/// Unversioned routes go to the highest served version. Without a policy the newest version that loads is served.
/// </summary>
public sealed record VersionPolicy
{
    public LatestVersions? Latest { get; init; }

    public SpecificVersions? Specific { get; init; }

    public AllVersions? All { get; init; }

    /// <summary>The policy of a manifest without one: the newest version that loads.</summary>
    public static VersionPolicy Default { get; } = new() { Latest = new LatestVersions(1) };

    /// <summary>The reason the policy cannot be applied, or null when it is well formed.</summary>
    public string? Problem() => (Latest, Specific, All) switch
    {
        (not null, null, null) when Latest.NumVersions < 1 => $"latest.numVersions must be at least 1; got {Latest.NumVersions}.",
        (not null, null, null) => null,
        (null, not null, null) when Specific.Versions.Count == 0 => "specific.versions must list at least one version.",
        (null, not null, null) when Specific.Versions.Any(v => v < 1) => "specific.versions are version folder numbers (1 or more).",
        (null, not null, null) => null,
        (null, null, not null) => null,
        _ => "give exactly one of latest, specific or all.",
    };

    /// <summary>
    /// The versions to try, newest first, from the version folders present, and how many of them may be served:
    /// latest N tries older versions while fewer than N could be loaded, so a bad upload falls back to the one before.
    /// </summary>
    public (IReadOnlyList<int> Candidates, int MaxServed) Select(IReadOnlyList<int> present)
    {
        ArgumentNullException.ThrowIfNull(present);
        var newestFirst = present.OrderDescending().ToList();
        if (Latest is { } latest)
        {
            return (newestFirst, latest.NumVersions);
        }

        if (Specific is { } specific)
        {
            return (newestFirst.Where(specific.Versions.Contains).ToList(), int.MaxValue);
        }

        return (newestFirst, int.MaxValue);
    }
}

/// <summary>The newest <paramref name="NumVersions"/> versions that load.</summary>
public sealed record LatestVersions(int NumVersions);

/// <summary>Exactly these versions (those present).</summary>
public sealed record SpecificVersions(IReadOnlyList<int> Versions);

/// <summary>Every version folder.</summary>
public sealed record AllVersions;
