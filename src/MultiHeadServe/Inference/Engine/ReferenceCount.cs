namespace MultiHeadServe.Inference.Engine;

/// <summary>
/// The reference count of something disposed when its last holder lets go (a session, a model version): a new hold is
/// taken only while the count is above zero, so nothing is held again once it reached zero and is being disposed.
/// </summary>
internal static class ReferenceCount
{
    /// <summary>Adds one to <paramref name="references"/> unless it is zero; false when it is.</summary>
    public static bool TryAcquire(ref int references)
    {
        var current = Volatile.Read(ref references);
        while (current > 0)
        {
            var seen = Interlocked.CompareExchange(ref references, current + 1, current);
            if (seen == current)
            {
                return true;
            }

            current = seen;
        }

        return false;
    }
}
