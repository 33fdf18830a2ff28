using System.Diagnostics;
using MultiHeadServe.Inference.Engine;

namespace MultiHeadServe.Tests.Inference.Engine;

/// <summary>
/// Concurrent runs, cancellation and disposal while runs are in flight. Not run beside other tests: their
/// allocations would blur the memory measurement and the timings.
/// </summary>
[Collection(nameof(SerialEngineTests))]
public sealed class SessionLifetimeTests
{
    private static readonly SessionSettings Cpu = new() { Provider = ExecutionProvider.Cpu, IntraOpThreads = 1 };

    [Fact]
    public void ConcurrentRunsOnOneSessionMatchSerialRuns()
    {
        const int Threads = 8;
        const int RunsPerThread = 5_000;
        using var session = ModelSession.FromFile(TestModels.TwoHeads, Cpu);
        var inputs = Enumerable.Range(0, 32).Select(i => TestModels.Input(1, 4, seed: 100 + i)).ToArray();
        var serial = inputs.Select(x => RunOnce(session, x)).ToArray();

        var mismatches = 0;
        var threads = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            for (var r = 0; r < RunsPerThread; r++)
            {
                var k = (t * 7 + r) % inputs.Length;
                var outputs = RunOnce(session, inputs[k]);
                if (!outputs[0].SequenceEqual(serial[k][0]) || !outputs[1].SequenceEqual(serial[k][1]))
                {
                    Interlocked.Increment(ref mismatches);
                }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        Assert.Equal(0, mismatches);
    }

    [Fact]
    public void HundredThousandRunsLeaveMemoryFlat()
    {
        using var session = ModelSession.FromFile(TestModels.TwoHeads, Cpu);
        var x = TestModels.Input(4, 4, seed: 11);
        // Enough runs first for the runtime's arenas and the JIT's tiers to settle.
        for (var i = 0; i < 50_000; i++)
        {
            RunOnce(session, x);
        }

        var before = SettledWorkingSet();
        for (var i = 0; i < 100_000; i++)
        {
            RunOnce(session, x);
        }

        var after = SettledWorkingSet();
        var growth = (double)(after - before) / before;
        Assert.True(growth < 0.05, $"Working set grew {growth:P1} ({before / 1024} KiB -> {after / 1024} KiB) over 100,000 runs.");
    }

    [Fact]
    public void CancellingATokenTerminatesARunInProgress()
    {
        using var session = ModelSession.FromFile(TestModels.Slow, Cpu);
        var x = new float[2048 * 256];
        using var cts = new CancellationTokenSource();

        var stopwatch = Stopwatch.StartNew();
        cts.CancelAfter(TimeSpan.FromMilliseconds(50));
        Assert.Throws<OperationCanceledException>(() => session.Run("x", x, [2048, 256], ["y"], cts.Token));
        var cancelled = stopwatch.Elapsed;

        stopwatch.Restart();
        session.Run("x", x, [2048, 256], ["y"], CancellationToken.None);

        Assert.True(cancelled < stopwatch.Elapsed, $"The cancelled run took {cancelled}, a full run {stopwatch.Elapsed}.");
    }

    [Fact]
    public void AnAlreadyCancelledTokenNeverStartsTheRun()
    {
        using var session = ModelSession.FromFile(TestModels.Linear, Cpu);

        Assert.Throws<OperationCanceledException>(() => session.Run("x", new float[4], [1, 4], ["y"], new CancellationToken(canceled: true)));
    }

    [Fact]
    public async Task DisposingWhileRunsAreInFlightLetsThemFinishAndRefusesNewOnes()
    {
        var session = ModelSession.FromFile(TestModels.Slow, Cpu);
        var x = TestModels.Input(1024, 256, seed: 12);
        var expected = session.Run("x", x, [1024, 256], ["y"], CancellationToken.None).Data[0];
        using var started = new CountdownEvent(4);
        var runs = Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            started.Signal();
            return session.Run("x", x, [1024, 256], ["y"], CancellationToken.None).Data[0];
        })).ToArray();
        started.Wait();

        session.Dispose();

        foreach (var run in runs)
        {
            // A run that had not yet entered the session when it was disposed is refused; none crashes or returns garbage.
            try
            {
                Assert.Equal(expected, await run);
            }
            catch (ObjectDisposedException)
            {
            }
        }

        Assert.Throws<ObjectDisposedException>(() => session.Run("x", x, [1024, 256], ["y"], CancellationToken.None));
    }

    private static float[][] RunOnce(ModelSession session, float[] x) =>
        session.Run("x", x, [x.Length / 4, 4], ["logits", "box"], CancellationToken.None).Data;

    private static long SettledWorkingSet()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var process = Process.GetCurrentProcess();
        process.Refresh();
        return process.WorkingSet64;
    }
}

[CollectionDefinition(nameof(SerialEngineTests), DisableParallelization = true)]
public sealed class SerialEngineTests;
