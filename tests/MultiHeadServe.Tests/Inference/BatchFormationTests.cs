using MultiHeadServe.Inference;

namespace MultiHeadServe.Tests.Inference;

/// <summary>The batch-forming rule on its own: which requests the next run takes, and when it waits.</summary>
public sealed class BatchFormationTests
{
    private static readonly HashSet<int> None = [];

    [Theory]
    [InlineData(7, 4)] // 7 single-row requests, preferred 4 and 8: the largest preferred size that can be formed goes now
    [InlineData(8, 8)]
    [InlineData(9, 8)]
    [InlineData(3, 0)] // no preferred size reachable, room left, delay not over: wait
    public void ThePreferredSizeThatCanBeFormedGoesAtOnce(int queued, int expected)
    {
        var take = BatchFormation.Take(Enumerable.Repeat(1, queued), maxBatchSize: 16, preferred: new HashSet<int> { 4, 8 }, delayExpired: false);

        Assert.Equal(expected, take);
    }

    [Fact]
    public void WithoutAPreferredSizeABatchWaitsUntilTheDelayIsOver()
    {
        Assert.Equal(0, BatchFormation.Take([1, 2, 1], maxBatchSize: 16, None, delayExpired: false));
        Assert.Equal(3, BatchFormation.Take([1, 2, 1], maxBatchSize: 16, None, delayExpired: true));
    }

    [Fact]
    public void AFullBatchGoesAtOnceAndTakesOnlyWhatFits()
    {
        Assert.Equal(4, BatchFormation.Take([4, 4, 4, 4], maxBatchSize: 16, None, delayExpired: false));
        Assert.Equal(4, BatchFormation.Take([4, 4, 4, 4, 4], maxBatchSize: 16, None, delayExpired: false));
    }

    [Fact]
    public void ARequestIsNeverSplitAndTheNextOneThatDoesNotFitWaitsForTheNextBatch()
    {
        // 10 + 5 = 15 rows fit in 16; the next 3 rows do not: the batch cannot grow, so it goes now with two requests.
        Assert.Equal(2, BatchFormation.Take([10, 5, 3], maxBatchSize: 16, None, delayExpired: false));
    }

    [Fact]
    public void ARequestLargerThanTheMaximumRunsAlone()
    {
        Assert.Equal(1, BatchFormation.Take([40, 1], maxBatchSize: 16, None, delayExpired: false));
    }

    [Fact]
    public void APreferredSizeIsMatchedOnWholeRequests()
    {
        // Prefixes add up to 3 and 6: neither is preferred (4), so the batch waits; at the deadline all goes.
        HashSet<int> preferred = [4];
        Assert.Equal(0, BatchFormation.Take([3, 3], maxBatchSize: 16, preferred, delayExpired: false));
        Assert.Equal(2, BatchFormation.Take([3, 3], maxBatchSize: 16, preferred, delayExpired: true));
        Assert.Equal(2, BatchFormation.Take([3, 1, 5], maxBatchSize: 16, preferred, delayExpired: false));
    }
}
