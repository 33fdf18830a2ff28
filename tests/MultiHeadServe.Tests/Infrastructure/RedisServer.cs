using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace MultiHeadServe.Tests.Infrastructure;

/// <summary>
/// A real, throwaway Redis server for tests: <c>redis-server</c> run as a child process on 127.0.0.1 and a free
/// port, with no automatic persistence (<c>--save '' --appendonly no</c>), its directory a temporary one.
/// </summary>
/// <remarks>
/// <para>Use as an xunit class or collection fixture; tests that stop or freeze it should have one of their own.
/// Each test keeps to keys of its own (<see cref="UniquePrefix"/>) rather than flushing the server.</para>
/// <para><see cref="StopAsync"/> shuts the server down saving its data (an explicit <c>SHUTDOWN SAVE</c>; the
/// automatic saves stay off), so <see cref="StartAsync"/> brings the same keys back on the same port, as a
/// restarted production server would. <see cref="FreezeAsync"/> sends SIGSTOP: the port stays open but nothing
/// answers, like a hung server; <see cref="ThawAsync"/> sends SIGCONT.</para>
/// <para>The binary is <c>MHS_REDIS_SERVER</c>, else <c>redis-server</c> on <c>PATH</c> (Debian: <c>apt-get install
/// redis-server</c>). Every wait is bounded. Not thread-safe: start, stop and freeze from one test at a time.</para>
/// </remarks>
public sealed class RedisServer : IAsyncLifetime
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(20);
    private string? _root;
    private string? _binary;
    private Process? _process;
    private bool _frozen;

    /// <summary>The TCP port, fixed for the fixture's lifetime so a restarted server is found again.</summary>
    public int Port { get; private set; }

    /// <summary>A StackExchange.Redis configuration string for the server.</summary>
    public string Configuration => $"127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Whether the server process is running (frozen or not).</summary>
    public bool IsRunning => _process is { HasExited: false };

    /// <summary>A key prefix no other test uses, e.g. <c>t3f2…:</c>.</summary>
    public static string UniquePrefix() => "t" + Guid.NewGuid().ToString("N")[..12] + ":";

    public async Task InitializeAsync()
    {
        _binary = FindBinary();
        _root = Directory.CreateTempSubdirectory("mhs-redis-").FullName;
        for (var attempt = 1; ; attempt++)
        {
            Port = FreePort();
            try
            {
                await StartAsync();
                return;
            }
            catch (InvalidOperationException) when (attempt < 3)
            {
                // The port was taken between picking and binding it; pick again.
            }
        }
    }

    /// <summary>Starts the server (same directory, same port, the keys of the last <see cref="StopAsync"/>) and waits until it answers PING.</summary>
    public async Task StartAsync()
    {
        if (IsRunning)
        {
            return;
        }

        var start = new ProcessStartInfo(_binary!)
        {
            WorkingDirectory = _root!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in (string[])["--port", Port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", _root!, "--dbfilename", "dump.rdb", "--protected-mode", "no", "--daemonize", "no", "--logfile", Path.Combine(_root!, "redis.log")])
        {
            start.ArgumentList.Add(argument);
        }

        _process = Process.Start(start) ?? throw new InvalidOperationException("Could not start redis-server.");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < StartTimeout)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"redis-server exited with code {_process.ExitCode} on port {Port}.\n{LogTail()}");
            }

            if (await TryCommandAsync("PING", TimeSpan.FromSeconds(1)) == "+PONG")
            {
                return;
            }

            await Task.Delay(50);
        }

        _process.Kill();
        throw new InvalidOperationException($"redis-server did not answer on port {Port} within {StartTimeout.TotalSeconds} s.\n{LogTail()}");
    }

    /// <summary>Shuts the server down, saving its keys for the next <see cref="StartAsync"/>.</summary>
    public async Task StopAsync()
    {
        if (!IsRunning)
        {
            return;
        }

        await ThawAsync();
        await TryCommandAsync("SHUTDOWN SAVE", TimeSpan.FromSeconds(5));
        using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await _process!.WaitForExitAsync(exit.Token);
        }
        catch (OperationCanceledException)
        {
            _process!.Kill();
            await _process.WaitForExitAsync();
        }
    }

    /// <summary>Suspends the server (SIGSTOP): connections stay open, nothing is answered.</summary>
    public async Task FreezeAsync()
    {
        await SignalAsync("-STOP");
        _frozen = true;
    }

    /// <summary>Resumes a frozen server (SIGCONT).</summary>
    public async Task ThawAsync()
    {
        if (_frozen)
        {
            await SignalAsync("-CONT");
            _frozen = false;
        }
    }

    /// <summary>Runs one command (words separated by spaces, none quoted) and returns the raw reply, RESP framing included.</summary>
    public async Task<string> CommandAsync(string command)
    {
        var reply = await TryCommandAsync(command, TimeSpan.FromSeconds(5));
        return reply ?? throw new InvalidOperationException($"Redis on port {Port} did not answer '{command}'.");
    }

    /// <summary>How many times <paramref name="command"/> (lower case, e.g. <c>hmget</c>) has run, from <c>INFO commandstats</c>.</summary>
    public async Task<long> CommandCallsAsync(string command)
    {
        var info = await CommandAsync("INFO commandstats");
        var line = info.Split("\r\n").FirstOrDefault(l => l.StartsWith($"cmdstat_{command}:", StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line.Split(['=', ','])[1], CultureInfo.InvariantCulture);
    }

    /// <summary>The number of keys in database 0.</summary>
    public async Task<long> KeyCountAsync()
    {
        var reply = await CommandAsync("DBSIZE");
        return long.Parse(reply.AsSpan(1), NumberStyles.Integer, CultureInfo.InvariantCulture);
    }

    public async Task DisposeAsync()
    {
        if (_process is not null)
        {
            await ThawAsync();
            if (!_process.HasExited)
            {
                _process.Kill();
                await _process.WaitForExitAsync();
            }

            _process.Dispose();
        }

        if (_root is not null)
        {
            try
            {
                Directory.Delete(_root, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private async Task SignalAsync(string signal)
    {
        if (!IsRunning)
        {
            return;
        }

        using var kill = Process.Start("kill", [signal, _process!.Id.ToString(CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
        if (kill.ExitCode != 0)
        {
            throw new InvalidOperationException($"kill {signal} {_process.Id} failed with exit code {kill.ExitCode}.");
        }
    }

    /// <summary>One command over a fresh connection; null when the server does not answer in time.</summary>
    private async Task<string?> TryCommandAsync(string command, TimeSpan timeout)
    {
        using var budget = new CancellationTokenSource(timeout);
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, Port, budget.Token);
            var stream = client.GetStream();
            var words = command.Split(' ');
            var request = new StringBuilder().Append('*').Append(words.Length).Append("\r\n");
            foreach (var word in words)
            {
                request.Append('$').Append(Encoding.UTF8.GetByteCount(word)).Append("\r\n").Append(word).Append("\r\n");
            }

            await stream.WriteAsync(Encoding.UTF8.GetBytes(request.ToString()), budget.Token);
            var buffer = new byte[64 * 1024];
            var reply = new StringBuilder();
            do
            {
                var read = await stream.ReadAsync(buffer, budget.Token);
                if (read == 0)
                {
                    break;
                }

                reply.Append(Encoding.UTF8.GetString(buffer, 0, read));
            }
            while (!Complete(reply.ToString()));

            return reply.ToString().TrimEnd();
        }
        catch (Exception exception) when (exception is SocketException or IOException or OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>Whether a reply is whole: a simple line, or a bulk string of the length it declares.</summary>
    private static bool Complete(string reply)
    {
        var end = reply.IndexOf("\r\n", StringComparison.Ordinal);
        if (end < 0)
        {
            return false;
        }

        if (reply[0] != '$')
        {
            return true;
        }

        var length = int.Parse(reply.AsSpan(1, end - 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        return length < 0 || Encoding.UTF8.GetByteCount(reply) >= end + 2 + length + 2;
    }

    private string LogTail()
    {
        var log = Path.Combine(_root!, "redis.log");
        return File.Exists(log) ? "Server log (last lines):\n" + string.Join('\n', File.ReadLines(log).TakeLast(15)) : "(no server log)";
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private static string FindBinary()
    {
        if (Environment.GetEnvironmentVariable("MHS_REDIS_SERVER") is { Length: > 0 } configured)
        {
            return configured;
        }

        return (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(directory => Path.Combine(directory, "redis-server"))
            .FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException(
                "redis-server was not found in MHS_REDIS_SERVER or on PATH. Install it (Debian/Ubuntu: apt-get install redis-server) to run these tests.");
    }
}
