using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Grpc.Net.Client;
using MultiHeadServe.Api.Grpc;
using MultiHeadServe.Benchmarks.Hosting;
using MultiHeadServe.Benchmarks.Load;
using MultiHeadServe.Benchmarks.Reporting;

namespace MultiHeadServe.Benchmarks.Protocols;

/// <summary>
/// The Open Inference Protocol's three wires side by side, on one service process: /v2 infer with JSON data, /v2
/// infer with the binary tensor data extension, and gRPC ModelInfer with raw contents (over the plain-text HTTP/2
/// port). Each prediction is one row of the model's input tensor, with values as a client would send them (pixels
/// through the manifest's normalisation); every wire gets every output of the model (JSON data, binary data, raw
/// contents). Closed loop, the wires taking turns round by round; request sizes are the bytes on the wire above HTTP.
/// The models are served as shipped except for their queue timeout (off, see <see cref="Repository"/>).
/// </summary>
internal static class ProtocolBenchmark
{
    public const string Command = "protocols";

    public const string Usage = """
        Usage: dotnet run -c Release --project tests/MultiHeadServe.Benchmarks -- protocols [options]

          --models <name,..>    image models from the repository (default shapes,objects)
          --concurrency <n>     clients in flight (default 16)
          --duration <s>        measured seconds per wire and model (default 9), split into rounds
          --rounds <n>          rounds the wires take turns in (default 3)
          --warmup <s>          unmeasured load per wire before the first round (default 2)
        """;

    private enum Wire
    {
        RestJson,
        RestBinary,
        Grpc,
    }

    public static async Task<int> RunAsync(IReadOnlyList<string> args)
    {
        string[] models = ["shapes", "objects"];
        var concurrency = 16;
        var duration = TimeSpan.FromSeconds(9);
        var rounds = 3;
        var warmup = TimeSpan.FromSeconds(2);
        for (var i = 0; i < args.Count; i++)
        {
            var value = i + 1 < args.Count ? args[i + 1] : null;
            switch (args[i])
            {
                case "--models" when value is not null: models = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries); i++; break;
                case "--concurrency" when value is not null: concurrency = int.Parse(value, CultureInfo.InvariantCulture); i++; break;
                case "--duration" when value is not null: duration = TimeSpan.FromSeconds(double.Parse(value, CultureInfo.InvariantCulture)); i++; break;
                case "--rounds" when value is not null: rounds = int.Parse(value, CultureInfo.InvariantCulture); i++; break;
                case "--warmup" when value is not null: warmup = TimeSpan.FromSeconds(double.Parse(value, CultureInfo.InvariantCulture)); i++; break;
                default:
                    Console.Error.WriteLine($"Unknown or incomplete option '{args[i]}'.");
                    Console.Error.WriteLine(Usage);
                    return 2;
            }
        }

        var root = RepositoryRoot.Find();
        var data = Directory.CreateTempSubdirectory("mhs-protocols-").FullName;
        var grpcPort = FreeLoopbackPort();
        var environment = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["ModelRepository__Path"] = Repository(Path.Combine(root, "models"), Path.Combine(data, "models"), models),
            ["ModelRepository__Provider"] = "Cpu",
            ["FeatureStore__SqlitePath"] = Path.Combine(data, "features.db"),
            ["Serilog__MinimumLevel__Default"] = "Warning",
            ["Serve__GrpcPort"] = grpcPort.ToString(CultureInfo.InvariantCulture),
        };
        for (var m = 0; m < models.Length; m++)
        {
            environment[$"ModelRepository__Only__{m}"] = models[m];
        }

        Console.Error.WriteLine($"Starting the service ({string.Join(", ", models)}; gRPC on port {grpcPort}) ...");
        await using var service = await ServerProcess.StartAsync("the service", ServiceAssembly.Locate(null, root), [], environment, TimeSpan.FromMinutes(3), CancellationToken.None);
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false, MaxConnectionsPerServer = int.MaxValue, PooledConnectionLifetime = Timeout.InfiniteTimeSpan })
        {
            BaseAddress = service.BaseAddress,
            Timeout = TimeSpan.FromSeconds(60),
        };
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{grpcPort}", new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true, UseProxy = false },
            MaxReceiveMessageSize = 64 << 20,
        });
        var grpc = new GRPCInferenceService.GRPCInferenceServiceClient(channel);

        var table = new StringBuilder();
        table.AppendLine(string.Create(CultureInfo.InvariantCulture, $"Open Inference Protocol wires, {concurrency} clients, {duration.TotalSeconds:0.#} s per wire in {rounds} interleaved rounds, {Environment.ProcessorCount} cores, load average {MachineMonitor.LoadAverageNow()?.ToString("0.0", CultureInfo.InvariantCulture) ?? "n/a"}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC"));
        table.AppendLine("model     wire                   request bytes    pred/s  (rounds)                 p50 ms   p99 ms   vs JSON  errors");
        var failed = false;
        foreach (var model in models)
        {
            var input = await InputAsync(http, root, model);
            var calls = new Dictionary<Wire, Func<int, Task>>
            {
                [Wire.RestJson] = i => RestAsync(http, model, input.Json[i % input.Json.Length], null),
                [Wire.RestBinary] = i => RestAsync(http, model, input.Binary[i % input.Binary.Length].Body, input.Binary[i % input.Binary.Length].HeaderLength),
                [Wire.Grpc] = async i => _ = await grpc.ModelInferAsync(input.Grpc[i % input.Grpc.Length]),
            };
            var sizes = new Dictionary<Wire, long>
            {
                [Wire.RestJson] = (long)input.Json.Average(b => b.Length),
                [Wire.RestBinary] = (long)input.Binary.Average(b => b.Body.Length),
                // The message as framed on the stream: five bytes of gRPC frame header before it.
                [Wire.Grpc] = (long)input.Grpc.Average(r => r.CalculateSize()) + 5,
            };

            foreach (var (wire, call) in calls)
            {
                await call(0);
                _ = await MeasureAsync(call, concurrency, warmup);
            }

            var windows = calls.Keys.ToDictionary(w => w, _ => new List<(double PerSecond, List<double> Latencies, long Errors, string? Error)>());
            for (var round = 0; round < rounds; round++)
            {
                foreach (var (wire, call) in calls)
                {
                    windows[wire].Add(await MeasureAsync(call, concurrency, duration / rounds));
                }
            }

            var json = windows[Wire.RestJson].Average(w => w.PerSecond);
            foreach (var (wire, measured) in windows)
            {
                var perSecond = measured.Average(w => w.PerSecond);
                var latencies = new LatencySamples(measured.SelectMany(w => w.Latencies));
                var errors = measured.Sum(w => w.Errors);
                failed |= errors > 0;
                var perRound = string.Join(", ", measured.Select(w => w.PerSecond.ToString("0.0", CultureInfo.InvariantCulture)));
                var firstError = measured.FirstOrDefault(w => w.Error is not null).Error;
                table.AppendLine(string.Create(CultureInfo.InvariantCulture,
                    $"{model,-9} {Label(wire),-22} {sizes[wire],13:N0} {perSecond,9:0.0}  ({perRound,-22}) {latencies.Percentile(50),8:0.00} {latencies.Percentile(99),8:0.00} {perSecond / json,8:0.00}x {errors,7}") +
                    (firstError is null ? "" : $"  first error: {firstError}"));
            }
        }

        Console.WriteLine(table);
        var output = Path.Combine(root, "benchmark-results", DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture) + "-protocols");
        Directory.CreateDirectory(output);
        await File.WriteAllTextAsync(Path.Combine(output, "results.txt"), table.ToString());
        Console.WriteLine($"Results: {Path.GetRelativePath(root, output)}{Path.DirectorySeparatorChar}results.txt");
        Directory.Delete(data, recursive: true);
        return failed ? 1 : 0;
    }

    /// <summary>
    /// The models as shipped but without a queue timeout, linked rather than copied: at 16 clients a slow model would
    /// otherwise refuse requests (429) at a rate that depends on each wire's speed, and refusals are not predictions.
    /// </summary>
    private static string Repository(string source, string target, IEnumerable<string> models)
    {
        foreach (var model in models)
        {
            var from = Path.Combine(source, model);
            var to = Directory.CreateDirectory(Path.Combine(target, model)).FullName;
            foreach (var entry in Directory.EnumerateFileSystemEntries(from).Where(e => Path.GetFileName(e) != "model.json"))
            {
                File.CreateSymbolicLink(Path.Combine(to, Path.GetFileName(entry)), entry);
            }

            var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(from, "model.json")))!.AsObject();
            manifest["batching"]!["queueTimeoutMicroseconds"] = 0;
            File.WriteAllText(Path.Combine(to, "model.json"), manifest.ToJsonString());
        }

        return target;
    }

    private static string Label(Wire wire) => wire switch
    {
        Wire.RestJson => "REST /v2, JSON data",
        Wire.RestBinary => "REST /v2, binary data",
        _ => "gRPC, raw contents",
    };

    private static async Task RestAsync(HttpClient http, string model, byte[] body, int? headerLength)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue(headerLength is null ? "application/json" : "application/octet-stream");
        if (headerLength is { } length)
        {
            content.Headers.Add("Inference-Header-Content-Length", length.ToString(CultureInfo.InvariantCulture));
        }

        using var response = await http.PostAsync(new Uri($"v2/models/{model}/infer", UriKind.Relative), content);
        var answer = await response.Content.ReadAsByteArrayAsync();
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new InvalidOperationException($"{(int)response.StatusCode}: {Encoding.UTF8.GetString(answer.AsSpan(0, Math.Min(answer.Length, 300)))}");
        }
    }

    /// <summary>Closed loop: every client sends its next prediction when the last is answered.</summary>
    private static async Task<(double PerSecond, List<double> Latencies, long Errors, string? Error)> MeasureAsync(Func<int, Task> call, int concurrency, TimeSpan duration)
    {
        var latencies = new List<double>[concurrency];
        long errors = 0;
        string? firstError = null;
        var stop = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var start = Stopwatch.GetTimestamp();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(worker => Task.Run(async () =>
        {
            var own = latencies[worker] = [];
            var next = worker * 7;
            while (Stopwatch.GetTimestamp() < stop)
            {
                var begin = Stopwatch.GetTimestamp();
                try
                {
                    await call(next++);
                    own.Add(Stopwatch.GetElapsedTime(begin).TotalMilliseconds);
                }
#pragma warning disable CA1031 // A failed call is counted and reported, not fatal to the run.
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    Interlocked.Increment(ref errors);
                    Interlocked.CompareExchange(ref firstError, ex.Message, null);
                }
            }
        })));
        var elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds;
        var all = latencies.SelectMany(l => l).ToList();
        return (all.Count / elapsed, all, errors, firstError);
    }

    /// <summary>Request bodies for a few different rows, the same rows on every wire.</summary>
    private static async Task<(byte[][] Json, (byte[] Body, int HeaderLength)[] Binary, ModelInferRequest[] Grpc)> InputAsync(HttpClient http, string root, string model)
    {
        using var metadata = JsonDocument.Parse(await http.GetStringAsync(new Uri($"v2/models/{model}", UriKind.Relative)));
        var input = metadata.RootElement.GetProperty("inputs")[0];
        var name = input.GetProperty("name").GetString()!;
        long[] shape = [1, .. input.GetProperty("shape").EnumerateArray().Skip(1).Select(d => d.GetInt64())];
        var count = (int)shape.Aggregate(1L, (a, d) => a * d);
        var image = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(root, "models", model, "model.json")))!["features"]!["image"]!;
        var scale = image["scale"]!.GetValue<float>();
        var mean = image["mean"]!.AsArray().Select(v => v!.GetValue<float>()).ToArray();
        var std = image["std"]!.AsArray().Select(v => v!.GetValue<float>()).ToArray();
        var plane = count / 3;
        var random = new Random(7);
        const int Rows = 4;
        var json = new byte[Rows][];
        var binary = new (byte[], int)[Rows];
        var grpc = new ModelInferRequest[Rows];
        for (var r = 0; r < Rows; r++)
        {
            // Pixels as a client would normalise them before sending: a byte per channel through the manifest's scale, mean and std.
            var values = new float[count];
            for (var i = 0; i < count; i++)
            {
                var channel = i / plane;
                values[i] = ((random.Next(256) * scale) - mean[channel]) / std[channel];
            }

            var bytes = new byte[count * sizeof(float)];
            Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
            json[r] = JsonSerializer.SerializeToUtf8Bytes(new { inputs = new[] { new { name, datatype = "FP32", shape, data = values } } });
            var header = JsonSerializer.SerializeToUtf8Bytes(new
            {
                inputs = new[] { new { name, datatype = "FP32", shape, parameters = new { binary_data_size = bytes.Length } } },
                parameters = new { binary_data_output = true },
            });
            binary[r] = ([.. header, .. bytes], header.Length);
            grpc[r] = new ModelInferRequest
            {
                ModelName = model,
                Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = name, Datatype = "FP32", Shape = { shape } } },
                RawInputContents = { ByteString.CopyFrom(bytes) },
            };
        }

        return (json, binary, grpc);
    }

    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
