namespace MultiHeadServe.Models;

/// <summary>
/// Gives memory back to the system after the rare events that leave much more garbage than live data: loading a
/// model, the drain of a retired version, reading a graph again to prune it. One full, compacting collection returns
/// the managed heap's free space now instead of whenever the next one runs, and trimming the C allocator returns the
/// pages disposed sessions freed (see <see cref="NativeHeap"/>). Thread-safe.
/// </summary>
internal static class ProcessMemory
{
    private static int s_queued;

    /// <summary>Gives memory back now, on the calling thread (the start-up load, before the server accepts requests).</summary>
    public static void Return()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        NativeHeap.Trim();
    }

    /// <summary>
    /// Gives memory back soon, on the thread pool. Calls made while a collection is waiting to start share it; one made
    /// while it runs queues another, since its garbage may not have been seen.
    /// </summary>
    public static void ReturnSoon()
    {
        if (Interlocked.Exchange(ref s_queued, 1) == 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(
                static _ =>
                {
                    Volatile.Write(ref s_queued, 0);
                    Return();
                },
                null);
        }
    }
}
