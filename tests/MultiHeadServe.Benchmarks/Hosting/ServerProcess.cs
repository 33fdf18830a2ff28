using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace MultiHeadServe.Benchmarks.Hosting;

/// <summary>
/// A server the benchmark started as a child process on a free loopback port: its CPU time is read from
/// outside (what the process used, whatever thread used it), and it is killed on dispose.
/// </summary>
internal sealed class ServerProcess : IAsyncDisposable
{
    private const int OutputLinesKept = 60;

    private readonly Process _process;
    private readonly Queue<string> _output = new();
    private readonly Lock _outputLock = new();

    private ServerProcess(string name, Process process, Uri baseAddress)
    {
        Name = name;
        _process = process;
        BaseAddress = baseAddress;
    }

    public string Name { get; }

    public Uri BaseAddress { get; }

    public int ProcessId => _process.Id;

    /// <summary>CPU time (user + system, all threads) the process has used since it started.</summary>
    public TimeSpan CpuTime
    {
        get
        {
            _process.Refresh();
            return _process.TotalProcessorTime;
        }
    }

    /// <summary>
    /// Starts <c>dotnet &lt;assembly&gt; &lt;arguments&gt; --urls http://127.0.0.1:&lt;free port&gt;</c> and waits
    /// until GET /readyz answers 200.
    /// </summary>
    /// <exception cref="InvalidOperationException">The process exited or did not become ready in time; the message carries its last output lines.</exception>
    public static async Task<ServerProcess> StartAsync(string name, string assembly, IReadOnlyList<string> arguments,
        IReadOnlyDictionary<string, string> environment, TimeSpan readyTimeout, CancellationToken cancellationToken)
    {
        var baseAddress = new Uri($"http://127.0.0.1:{FreeLoopbackPort()}/");
        var start = new ProcessStartInfo(DotnetHost.Path)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(assembly);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add(baseAddress.GetLeftPart(UriPartial.Authority));
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var server = new ServerProcess(name, process, baseAddress);
        process.OutputDataReceived += (_, e) => server.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => server.Keep(e.Data);
        if (!process.Start())
        {
            throw new InvalidOperationException($"{name}: '{DotnetHost.Path}' did not start.");
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await server.WaitUntilReadyAsync(readyTimeout, cancellationToken);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    private async Task WaitUntilReadyAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(5) };
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        var lastStatus = "no answer";
        while (Stopwatch.GetTimestamp() < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"{Name} exited with code {_process.ExitCode} before it was ready. Its last output:\n{OutputTail()}");
            }

            try
            {
                using var response = await client.GetAsync(new Uri("readyz", UriKind.Relative), cancellationToken);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }

                lastStatus = $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancellationToken)}";
            }
            catch (HttpRequestException ex)
            {
                lastStatus = ex.Message;
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                lastStatus = "/readyz timed out";
            }

            await Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken);
        }

        throw new InvalidOperationException($"{Name} was not ready after {timeout.TotalSeconds:0} s (last /readyz: {lastStatus}). Its last output:\n{OutputTail()}");
    }

    /// <summary>The process's last output lines (the service logs warnings and errors only during the run).</summary>
    public string OutputTail()
    {
        lock (_outputLock)
        {
            return _output.Count == 0 ? "(no output)" : string.Join('\n', _output);
        }
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_outputLock)
        {
            _output.Enqueue(line);
            while (_output.Count > OutputLinesKept)
            {
                _output.Dequeue();
            }
        }
    }

    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (InvalidOperationException)
        {
            // Never started or already reaped: nothing left to stop.
        }
        catch (OperationCanceledException)
        {
            // Killed but not reaped within the timeout; the OS finishes the job.
        }
        finally
        {
            _process.Dispose();
        }
    }
}

/// <summary>The <c>dotnet</c> host that runs this benchmark, used to start the service and the floor the same way.</summary>
internal static class DotnetHost
{
    public static string Path { get; } = Find();

    private static string Find()
    {
        // Under `dotnet run` or `dotnet x.dll` the current process is the host itself.
        if (Environment.ProcessPath is { } current && System.IO.Path.GetFileNameWithoutExtension(current) == "dotnet")
        {
            return current;
        }

        foreach (var variable in new[] { "DOTNET_HOST_PATH", "DOTNET_ROOT" })
        {
            if (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value)
            {
                var candidate = variable == "DOTNET_ROOT" ? System.IO.Path.Combine(value, OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet") : value;
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        return "dotnet";
    }
}
