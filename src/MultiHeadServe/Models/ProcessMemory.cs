using Microsoft.Extensions.Options;

namespace MultiHeadServe.Models;

/// <summary>
/// Gives memory back to the system after the rare events that leave much more garbage than live data: loading a
/// model, the drain of a retired version, reading a graph again to prune it, building the OpenAPI document. One full,
/// compacting collection returns the managed heap's free space now instead of whenever the next one runs, and trimming
/// the C allocator returns the pages disposed sessions freed (see <see cref="NativeHeap"/>). Does nothing where
/// <see cref="ModelRepositoryOptions.CompactAfterUnload"/> is off (a host running several apps: the collection would
/// pause all of them). Thread-safe.
/// </summary>
public sealed class ProcessMemory(IOptions<ModelRepositoryOptions> options)
{
    // Per process, as the collection is.
    private static int s_queued;

    private readonly bool _enabled = options.Value.CompactAfterUnload;

    /// <summary>Gives memory back now, on the calling thread (the start-up load, before the server accepts requests).</summary>
    public void Return()
    {
        if (_enabled)
        {
            Collect();
        }
    }

    /// <summary>
    /// Gives memory back soon, on the thread pool. Calls made while a collection is waiting to start share it; one made
    /// while it runs queues another, since its garbage may not have been seen.
    /// </summary>
    public void ReturnSoon()
    {
        if (_enabled && Interlocked.Exchange(ref s_queued, 1) == 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(
                static _ =>
                {
                    Volatile.Write(ref s_queued, 0);
                    Collect();
                },
                null);
        }
    }

    private static void Collect()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        NativeHeap.Trim();
    }
}
