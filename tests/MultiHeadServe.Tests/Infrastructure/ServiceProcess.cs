using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace MultiHeadServe.Tests.Infrastructure;

/// <summary>
/// A built MultiHeadServe.dll started as its own process on a free loopback port, over the repository's demo
/// models, with everything it writes captured line by line. Disposing kills it.
/// </summary>
internal sealed class ServiceProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _data;
    private readonly List<string> _output = [];

    private ServiceProcess(Process process, string data, Uri baseAddress)
    {
        _process = process;
        _data = data;
        Client = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    public HttpClient Client { get; }

    /// <summary>The lines written so far (stdout and stderr), as a snapshot.</summary>
    public IReadOnlyList<string> Output
    {
        get
        {
            lock (_output)
            {
                return [.. _output];
            }
        }
    }

    /// <summary>The service's own build output, the one the test project was built with.</summary>
    public static string BuiltService => Path.Combine(AppContext.BaseDirectory, "MultiHeadServe.dll");

    /// <summary>Starts <paramref name="dll"/> in <paramref name="workingDirectory"/> and waits until /readyz answers 200.</summary>
    public static async Task<ServiceProcess> StartAsync(string dll, string workingDirectory, IReadOnlyDictionary<string, string>? environment = null)
    {
        var service = Start(dll, workingDirectory, environment, FreePort());
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            Assert.False(service._process.HasExited, $"{dll} exited:\n" + string.Join('\n', service.Output));
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

            Assert.True(DateTime.UtcNow < deadline, $"{dll} did not become ready within 90 s:\n" + string.Join('\n', service.Output));
            await Task.Delay(200);
        }
    }

    /// <summary>Runs <paramref name="dll"/> until it exits or <paramref name="timeout"/> passes (then the exit code is null).</summary>
    public static async Task<(int? ExitCode, IReadOnlyList<string> Output)> RunUntilExitAsync(
        string dll, IReadOnlyDictionary<string, string> environment, TimeSpan timeout)
    {
        await using var service = Start(dll, Path.GetDirectoryName(dll)!, environment, FreePort());
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await service._process.WaitForExitAsync(cts.Token);
            // The exit was seen; let the output readers drain.
            service._process.WaitForExit();
            return (service._process.ExitCode, service.Output);
        }
        catch (OperationCanceledException)
        {
            return (null, service.Output);
        }
    }

    /// <summary>Sends SIGTERM, as an orchestrator stopping the pod does.</summary>
    public void Terminate()
    {
        using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
    }

    public bool HasExited => _process.HasExited;

    /// <summary>The service's process id (for its /proc entries).</summary>
    public int ProcessId => _process.Id;

    /// <summary>The process's resident memory now, in bytes (VmRSS).</summary>
    public long ResidentBytes
    {
        get
        {
            var line = File.ReadLines($"/proc/{_process.Id}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            return long.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
        }
    }

    /// <summary>Waits until a line satisfies <paramref name="predicate"/> (the log is written asynchronously).</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> predicate, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            if (Output.FirstOrDefault(predicate) is { } line)
            {
                return line;
            }

            Assert.True(DateTime.UtcNow < deadline, $"No line {what} within 10 s:\n" + string.Join('\n', Output));
            await Task.Delay(50);
        }
    }

    private static ServiceProcess Start(string dll, string workingDirectory, IReadOnlyDictionary<string, string>? environment, int port)
    {
        var data = Directory.CreateTempSubdirectory("mhs-process-").FullName;
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { dll, "--urls", $"http://127.0.0.1:{port}" },
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            Environment =
            {
                ["ASPNETCORE_ENVIRONMENT"] = "Production",
                ["ModelRepository__Path"] = RepositoryPaths.Models,
                ["FeatureStore__SqlitePath"] = Path.Combine(data, "features.db"),
            },
        };
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        var service = new ServiceProcess(Process.Start(start)!, data, new Uri($"http://127.0.0.1:{port}"));
        service._process.OutputDataReceived += (_, e) => service.Append(e.Data);
        service._process.ErrorDataReceived += (_, e) => service.Append(e.Data);
        service._process.BeginOutputReadLine();
        service._process.BeginErrorReadLine();
        return service;
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.Add(line);
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
