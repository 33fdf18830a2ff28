using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Inference.Engine;

/// <summary>
/// The service built with -p:OnnxRuntimeGpu=true (ONNX Runtime's CUDA package), started as its own process. .ci/run
/// builds it and names its MultiHeadServe.dll in MHS_GPU_BUILD; elsewhere these tests are skipped.
/// </summary>
public sealed partial class GpuBuildTests
{
    private const string Variable = "MHS_GPU_BUILD";

    private static readonly object RankingRow = new { user_id = "u0042", item_id = "i0007" };

    [GpuBuildFact]
    public async Task AutoServesTheCpuBuildsPredictionsWithOneWarningNamingWhyCudaIsNotUsed()
    {
        await using var gpu = await ServiceProcess.StartAsync("Auto");
        await using var cpu = new ServeFactory();
        using var cpuClient = cpu.CreateClient();
        var image = ReferenceData.Load("shapes").Images[0];

        foreach (var (model, body) in new[] { ("shapes", (object)new { image }), ("ranking", RankingRow) })
        {
            var expected = await (await cpuClient.PostJsonAsync($"/v1/models/{model}/predict", body)).JsonAsync();
            var actual = await (await gpu.Client.PostJsonAsync($"/v1/models/{model}/predict", body)).JsonAsync();
            AssertSameNumbers(expected.GetProperty("heads"), actual.GetProperty("heads"), model);
        }

        var models = await (await gpu.Client.GetAsync("/v1/models")).JsonAsync();
        var providers = models.GetProperty("models").EnumerateArray().Select(m => m.GetProperty("executionProvider").GetString()).Distinct().ToList();
        var cudaWarnings = gpu.Output.Where(line => line.Contains("WRN]", StringComparison.Ordinal) && line.Contains("CUDA", StringComparison.Ordinal)).ToList();
        if (providers.SequenceEqual(["CUDAExecutionProvider"]))
        {
            Assert.Empty(cudaWarnings);
            return;
        }

        Assert.Equal(["CPUExecutionProvider"], providers);
        var warning = Assert.Single(cudaWarnings);
        Assert.Matches(MissingLibrary(), warning);
    }

    [GpuBuildFact]
    public async Task CudaRefusesToStartWithTheReasonWhereCudaCannotRun()
    {
        var (exitCode, output) = await ServiceProcess.RunUntilExitAsync("Cuda", TimeSpan.FromSeconds(60));

        if (exitCode is null)
        {
            // It started: then this host runs CUDA, and every model must be on it.
            Assert.DoesNotContain(output, line => line.Contains("CPUExecutionProvider", StringComparison.Ordinal));
            return;
        }

        Assert.NotEqual(0, exitCode);
        var text = string.Join('\n', output);
        Assert.Contains("ExecutionProvider=Cuda", text, StringComparison.Ordinal);
        Assert.Matches(MissingLibrary(), text);
    }

    private static void AssertSameNumbers(JsonElement expected, JsonElement actual, string path)
    {
        Assert.Equal(expected.ValueKind, actual.ValueKind);
        switch (expected.ValueKind)
        {
            case JsonValueKind.Object:
                Assert.Equal(expected.EnumerateObject().Select(p => p.Name), actual.EnumerateObject().Select(p => p.Name));
                foreach (var property in expected.EnumerateObject())
                {
                    AssertSameNumbers(property.Value, actual.GetProperty(property.Name), $"{path}.{property.Name}");
                }

                break;
            case JsonValueKind.Array:
                Assert.Equal(expected.GetArrayLength(), actual.GetArrayLength());
                for (var i = 0; i < expected.GetArrayLength(); i++)
                {
                    AssertSameNumbers(expected[i], actual[i], $"{path}[{i}]");
                }

                break;
            case JsonValueKind.Number:
                Assert.True(Math.Abs(expected.GetDouble() - actual.GetDouble()) <= 1e-5, $"{path}: {actual.GetDouble()} vs the CPU build's {expected.GetDouble()}");
                break;
            default:
                Assert.Equal(expected.GetRawText(), actual.GetRawText());
                break;
        }
    }

    /// <summary>The fallback reason names the library the CUDA provider could not find.</summary>
    [GeneratedRegex(@"lib[\w.+-]+\.so(\.\d+)* is missing")]
    private static partial Regex MissingLibrary();

    /// <summary>Skipped unless .ci/run (or a developer) built the GPU variant and named it in MHS_GPU_BUILD.</summary>
    public sealed class GpuBuildFactAttribute : FactAttribute
    {
        public GpuBuildFactAttribute()
        {
            var path = Environment.GetEnvironmentVariable(Variable);
            if (string.IsNullOrEmpty(path) || !File.Exists(path))
            {
                Skip = $"{Variable} does not name the GPU build's MultiHeadServe.dll (dotnet build src/MultiHeadServe -p:OnnxRuntimeGpu=true; .ci/run does it).";
            }
        }
    }

    /// <summary>The GPU build as a process on a free loopback port, over the repository's demo models.</summary>
    private sealed class ServiceProcess : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly string _data;

        private ServiceProcess(Process process, string data, Uri baseAddress)
        {
            _process = process;
            _data = data;
            Client = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
        }

        public HttpClient Client { get; }

        public List<string> Output { get; } = [];

        public static async Task<ServiceProcess> StartAsync(string provider)
        {
            var port = FreePort();
            var data = Directory.CreateTempSubdirectory("mhs-gpu-").FullName;
            var service = new ServiceProcess(Start(provider, port, data), data, new Uri($"http://127.0.0.1:{port}"));
            service.Capture();
            var deadline = DateTime.UtcNow.AddSeconds(90);
            while (true)
            {
                Assert.False(service._process.HasExited, "The GPU build exited:\n" + string.Join('\n', service.Output));
                try
                {
                    if ((await service.Client.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK)
                    {
                        return service;
                    }
                }
                catch (HttpRequestException)
                {
                }

                Assert.True(DateTime.UtcNow < deadline, "The GPU build did not become ready within 90 s:\n" + string.Join('\n', service.Output));
                await Task.Delay(200);
            }
        }

        /// <summary>Runs the service until it exits or <paramref name="timeout"/> passes (then its exit code is null).</summary>
        public static async Task<(int? ExitCode, List<string> Output)> RunUntilExitAsync(string provider, TimeSpan timeout)
        {
            var data = Directory.CreateTempSubdirectory("mhs-gpu-").FullName;
            await using var service = new ServiceProcess(Start(provider, FreePort(), data), data, new Uri("http://127.0.0.1"));
            service.Capture();
            using var cts = new CancellationTokenSource(timeout);
            try
            {
                await service._process.WaitForExitAsync(cts.Token);
                return (service._process.ExitCode, service.Output);
            }
            catch (OperationCanceledException)
            {
                return (null, service.Output);
            }
        }

        private static Process Start(string provider, int port, string data)
        {
            var dll = Environment.GetEnvironmentVariable(Variable)!;
            var start = new ProcessStartInfo("dotnet")
            {
                ArgumentList = { dll, "--urls", $"http://127.0.0.1:{port}" },
                WorkingDirectory = Path.GetDirectoryName(dll)!,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                Environment =
                {
                    ["ASPNETCORE_ENVIRONMENT"] = "Production",
                    ["ModelRepository__Path"] = RepositoryPaths.Models,
                    ["ModelRepository__Provider"] = provider,
                    ["FeatureStore__SqlitePath"] = Path.Combine(data, "features.db"),
                },
            };
            return Process.Start(start)!;
        }

        private void Capture()
        {
            _process.OutputDataReceived += (_, e) => Append(e.Data);
            _process.ErrorDataReceived += (_, e) => Append(e.Data);
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        private void Append(string? line)
        {
            if (line is not null)
            {
                lock (Output)
                {
                    Output.Add(line);
                }
            }
        }

        private static int FreePort()
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }

            _process.Dispose();
            Directory.Delete(_data, recursive: true);
        }
    }
}
