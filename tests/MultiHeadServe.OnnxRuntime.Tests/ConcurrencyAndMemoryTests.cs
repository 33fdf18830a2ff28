using System.Diagnostics;

namespace MultiHeadServe.OnnxRuntime.Tests;

/// <summary>Not run beside other tests: their allocations would blur the memory measurement and the timings.</summary>
[Collection(nameof(SerialTestGroup))]
public sealed class ConcurrencyAndMemoryTests
{
    private static readonly SessionOptions Cpu = new() { ExecutionProvider = ExecutionProvider.Cpu, IntraOpThreads = 1 };

    [Fact]
    public void ConcurrentRunsOnOneSessionMatchSerialRuns()
    {
        const int Threads = 8;
        const int RunsPerThread = 10_000;
        using var session = InferenceSession.FromFile(TestModels.TwoHeads, Cpu);
        var inputs = Enumerable.Range(0, 32).Select(i => TestModels.Input(1, 4, seed: 100 + i)).ToArray();
        var serial = inputs.Select(x => RunOnce(session, x)).ToArray();

        var mismatches = 0;
        var threads = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            for (var r = 0; r < RunsPerThread; r++)
            {
                var k = (t * 7 + r) % inputs.Length;
                var (logits, box) = RunOnce(session, inputs[k]);
                if (!logits.SequenceEqual(serial[k].Logits) || !box.SequenceEqual(serial[k].Box))
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
        using var session = InferenceSession.FromFile(TestModels.TwoHeads, Cpu);
        var x = TestModels.Input(4, 4, seed: 11);
        for (var i = 0; i < 10_000; i++)
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
        using var session = InferenceSession.FromFile(TestModels.Slow, Cpu);
        var x = new float[2048 * 256];
        using var input = OrtValue.CreateTensor(x, 2048, 256);
        using var cts = new CancellationTokenSource();

        var stopwatch = Stopwatch.StartNew();
        cts.CancelAfter(TimeSpan.FromMilliseconds(50));
        Assert.Throws<OperationCanceledException>(() => session.Run([TestModels.Named("x", input)], null, cts.Token));
        var cancelled = stopwatch.Elapsed;

        stopwatch.Restart();
        using (session.Run([TestModels.Named("x", input)], null, CancellationToken.None))
        {
        }

        Assert.True(cancelled < stopwatch.Elapsed, $"Cancelled run took {cancelled}, a full run {stopwatch.Elapsed}.");
    }

    [Fact]
    public void RunOptionsTerminateStopsRunsUntilReset()
    {
        using var session = InferenceSession.FromFile(TestModels.Linear, Cpu);
        using var input = OrtValue.CreateTensor(new float[4], 1, 4);
        using var runOptions = new OrtRunOptions();

        runOptions.Terminate();
        var error = Assert.Throws<OnnxRuntimeException>(() => session.Run([TestModels.Named("x", input)], null, runOptions));
        runOptions.Reset();
        using var result = session.Run([TestModels.Named("x", input)], null, runOptions);

        Assert.Contains("terminate", error.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(3, result["y"].GetData<float>().Length);
    }

    [Fact]
    public void AnAlreadyCancelledTokenNeverStartsTheRun()
    {
        using var session = InferenceSession.FromFile(TestModels.Linear, Cpu);
        using var input = OrtValue.CreateTensor(new float[4], 1, 4);

        Assert.Throws<OperationCanceledException>(() => session.Run([TestModels.Named("x", input)], null, new CancellationToken(canceled: true)));
    }

    private static (float[] Logits, float[] Box) RunOnce(InferenceSession session, float[] x)
    {
        using var input = OrtValue.CreateTensor(x, x.Length / 4, 4);
        using var result = session.Run([TestModels.Named("x", input)]);
        return (result["logits"].GetData<float>().ToArray(), result["box"].GetData<float>().ToArray());
    }

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

[CollectionDefinition(nameof(SerialTestGroup), DisableParallelization = true)]
public sealed class SerialTestGroup;
