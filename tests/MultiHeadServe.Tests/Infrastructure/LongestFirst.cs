using System.Reflection;
using Xunit.Abstractions;

[assembly: TestCollectionOrderer("MultiHeadServe.Tests.Infrastructure.LongestFirst", "MultiHeadServe.Tests")]

namespace MultiHeadServe.Tests.Infrastructure;

/// <summary>
/// How long a test class takes on a two-core machine, as measured; a scheduling hint only. xUnit runs as many test
/// classes at once as there are cores and starts the next when one ends, so a long class started last runs alone at the
/// end: the explorer's 58 s did, and the suite's wall time was its sum of classes on two lanes plus that tail.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
internal sealed class TakesAboutAttribute(int seconds) : Attribute
{
    public int Seconds { get; } = seconds;
}

/// <summary>
/// Starts the test classes marked <see cref="TakesAboutAttribute"/> first, longest first (the longest-processing-time
/// rule), then the rest in xUnit's own order, so the long ones overlap the many short ones instead of trailing them.
/// </summary>
public sealed class LongestFirst : ITestCollectionOrderer
{
    // xUnit names the collection of a class without a [Collection] "Test collection for <full class name>".
    private const string PerClassPrefix = "Test collection for ";

    public IEnumerable<ITestCollection> OrderTestCollections(IEnumerable<ITestCollection> testCollections) =>
        testCollections
            .Select((collection, index) => (collection, index, seconds: SecondsOf(collection)))
            .OrderByDescending(c => c.seconds)
            .ThenBy(c => c.index)
            .Select(c => c.collection);

    /// <summary>The hint on a class's own collection; 0 for a shared [Collection], which keeps xUnit's order.</summary>
    private static int SecondsOf(ITestCollection collection) =>
        collection.DisplayName.StartsWith(PerClassPrefix, StringComparison.Ordinal) &&
        typeof(LongestFirst).Assembly.GetType(collection.DisplayName[PerClassPrefix.Length..]) is { } type
            ? type.GetCustomAttribute<TakesAboutAttribute>()?.Seconds ?? 0
            : 0;
}
