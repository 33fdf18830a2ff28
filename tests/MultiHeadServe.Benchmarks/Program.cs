using MultiHeadServe.Benchmarks;
using MultiHeadServe.Benchmarks.Hosting;

// The same executable is the empty endpoint the HTTP floor scenario measures, started as its own process.
if (args is [HttpFloor.Command, .. var floorArgs])
{
    return await HttpFloor.RunAsync(floorArgs);
}

// And the plain endpoint a team would write instead (one model folder per process).
if (args is [PlainEndpoint.Command, .. var plainArgs])
{
    return await PlainEndpoint.RunAsync(plainArgs);
}

// The ranking model on each feature store in turn (SQLite, PostgreSQL, Redis).
if (args is [MultiHeadServe.Benchmarks.Stores.FeatureStoreBenchmark.Command, .. var storeArgs])
{
    try
    {
        return await MultiHeadServe.Benchmarks.Stores.FeatureStoreBenchmark.RunAsync(storeArgs, CancellationToken.None);
    }
    catch (UsageException ex)
    {
        Console.Error.WriteLine(ex.Message);
        return 2;
    }
}

// The Open Inference Protocol's wires compared: /v2 JSON, /v2 binary data, gRPC.
if (args is [MultiHeadServe.Benchmarks.Protocols.ProtocolBenchmark.Command, .. var protocolArgs])
{
    return await MultiHeadServe.Benchmarks.Protocols.ProtocolBenchmark.RunAsync(protocolArgs);
}

if (args.Any(a => a is "--help" or "-h"))
{
    Console.WriteLine(BenchmarkOptions.Usage);
    return 0;
}

BenchmarkOptions options;
try
{
    options = BenchmarkOptions.Parse(args);
}
catch (UsageException ex)
{
    Console.Error.WriteLine(ex.Message);
    Console.Error.WriteLine(BenchmarkOptions.Usage);
    return 2;
}

using var cancellation = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    // Stop cleanly so the child servers are killed and the temporary repository removed.
    e.Cancel = true;
    cancellation.Cancel();
};

try
{
    return await new BenchmarkRun(options, Console.Out, Console.Error).RunAsync(cancellation.Token);
}
catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
{
    Console.Error.WriteLine("Cancelled.");
    return 130;
}
catch (InvalidOperationException ex)
{
    Console.Error.WriteLine($"The benchmark could not run: {ex.Message}");
    return 1;
}
