using System.Collections.Concurrent;

namespace MultiHeadServe.Models;

/// <summary>
/// The one thread that does a repository's blocking load work (reading files, creating and warming sessions): off the
/// thread pool the requests being served need, and always the same thread, so the native memory a load allocates
/// and frees comes from one C-allocator arena that the next load reuses, instead of a new arena per new thread
/// (which is how resident memory crept up over load/unload cycles). The thread starts on first use and ends on
/// <see cref="Dispose"/>. Work items run one at a time, in order. Thread-safe.
/// </summary>
internal sealed class LoadThread : IDisposable
{
    private readonly BlockingCollection<Action> _work = new();
    private readonly Lock _gate = new();
    private Thread? _thread;

    /// <summary>Runs <paramref name="work"/> on the load thread; its result or exception completes the task.</summary>
    /// <exception cref="ObjectDisposedException">The load thread was stopped.</exception>
    public Task<T> Run<T>(Func<T> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        EnsureStarted();
        _work.Add(() =>
        {
            try
            {
                done.SetResult(work());
            }
            catch (Exception ex)
            {
                done.SetException(ex);
            }
        });
        return done.Task;
    }

    public void Dispose()
    {
        _work.CompleteAdding();
        lock (_gate)
        {
            if (_thread is { } thread && thread != Thread.CurrentThread)
            {
                thread.Join();
            }
        }

        _work.Dispose();
    }

    private void EnsureStarted()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_work.IsAddingCompleted, this);
            if (_thread is not null)
            {
                return;
            }

            _thread = new Thread(() =>
            {
                foreach (var item in _work.GetConsumingEnumerable())
                {
                    item();
                }
            })
            {
                IsBackground = true,
                Name = "Model loads",
            };
            _thread.Start();
        }
    }
}
