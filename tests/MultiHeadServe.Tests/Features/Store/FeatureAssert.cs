namespace MultiHeadServe.Tests.Features.Store;

internal static class FeatureAssert
{
    /// <summary>Asserts that a looked-up row exists and holds exactly <paramref name="expected"/>.</summary>
    public static void Row(float[]? actual, params float[] expected)
    {
        Assert.NotNull(actual);
        Assert.Equal(expected, actual);
    }
}
