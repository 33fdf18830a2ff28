using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace MultiHeadServe.Tests.Infrastructure;

/// <summary>
/// A real, throwaway PostgreSQL server for tests: a fresh cluster in a temporary directory,
/// listening on 127.0.0.1 on a free port, with trust authentication for user <c>postgres</c>.
/// </summary>
/// <remarks>
/// <para>Use as an xunit class or collection fixture. Tests that call <see cref="StopAsync"/>
/// should have a server of their own (a class fixture), since every test sharing it loses it.
/// <see cref="CreateSchemaAsync"/> (cheap) or <see cref="CreateDatabaseAsync"/> gives each test an
/// empty namespace of its own.</para>
/// <para>PostgreSQL refuses to run as root. When the tests run as root, the server runs as the
/// unprivileged user <c>mhs-pg</c> (created on first use with <c>useradd --system</c>; <c>nobody</c>
/// if that fails) through <c>runuser</c>. The binaries (<c>initdb</c>, <c>pg_ctl</c>, <c>postgres</c>)
/// are looked up in <c>MHS_POSTGRES_BIN</c>, then on <c>PATH</c>, then in Debian's
/// <c>/usr/lib/postgresql/&lt;version&gt;/bin</c>.</para>
/// <para>Pooled connections do not survive <see cref="StopAsync"/>: after a restart, the first use
/// of each one fails (a transient error) and the pool replaces it.</para>
/// <para><see cref="FreezeAsync"/> suspends every process of the server (SIGSTOP to the postmaster and each of
/// its children): the port still accepts connections, but nothing answers, like a hung server;
/// <see cref="ThawAsync"/> resumes them (SIGCONT).</para>
/// <para>Every wait is bounded. Not thread-safe: start, stop and freeze from one test at a time.</para>
/// </remarks>
public sealed class PostgresServer : IAsyncLifetime
{
    private const string ServiceUser = "mhs-pg";
    private const string FallbackUser = "nobody";
    private static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(60);
    private static readonly SemaphoreSlim UserCreation = new(1, 1);

    private string? _root;
    private string? _binDirectory;
    private string? _runAs;
    private List<int>? _frozen;

    /// <summary>The TCP port, fixed for the fixture's lifetime so a restarted server is found again.</summary>
    public int Port { get; private set; }

    /// <summary>Connects to the <c>postgres</c> database as superuser <c>postgres</c>.</summary>
    public string ConnectionString => ConnectionStringFor("postgres");

    /// <summary>Whether the server is running (as far as this fixture knows).</summary>
    public bool IsRunning { get; private set; }

    private string Root => _root ?? throw new InvalidOperationException("The PostgreSQL fixture has not been initialised.");

    private string DataDirectory => Path.Combine(Root, "data");

    private string LogFile => Path.Combine(Root, "postgres.log");

    /// <summary>Creates the cluster and starts the server.</summary>
    public async Task InitializeAsync()
    {
        _binDirectory = FindBinaries();
        _runAs = Environment.IsPrivilegedProcess ? await EnsureServiceUserAsync() : null;
        _root = Directory.CreateTempSubdirectory("mhs-pg-").FullName;
        if (_runAs is not null)
        {
            await RunCheckedAsync("chown", [_runAs, _root]);
        }

        await RunToolCheckedAsync("initdb", ["-D", DataDirectory, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"]);

        // A port picked now may be taken by the time the server binds it; pick again a few times.
        for (var attempt = 1; ; attempt++)
        {
            Port = FreePort();
            await WriteSettingsAsync();
            try
            {
                await StartAsync();
                return;
            }
            catch (InvalidOperationException) when (attempt < 3)
            {
            }
        }
    }

    /// <summary>Starts the server (same data, same port) and waits until it accepts connections.</summary>
    /// <exception cref="InvalidOperationException">It did not start; the message holds its log.</exception>
    public async Task StartAsync()
    {
        if (IsRunning)
        {
            return;
        }

        var (exitCode, output) = await RunToolAsync("pg_ctl", ["-D", DataDirectory, "-l", LogFile, "-w", "-t", "30", "start"]);
        if (exitCode != 0)
        {
            throw new InvalidOperationException(
                $"PostgreSQL did not start on port {Port} (pg_ctl exit code {exitCode}).\n{output}\n{await LogTailAsync()}");
        }

        IsRunning = true;
    }

    /// <summary>Stops the server (fast shutdown: open sessions are terminated), keeping its data.</summary>
    public async Task StopAsync()
    {
        if (!IsRunning)
        {
            return;
        }

        await ThawAsync();

        await RunToolCheckedAsync("pg_ctl", ["-D", DataDirectory, "-m", "fast", "-w", "-t", "30", "stop"]);
        IsRunning = false;
    }

    /// <summary>
    /// Suspends the server (SIGSTOP to the postmaster first, so that it forks no new backend, then to each of its
    /// children): connections are still accepted by the kernel, but no query is answered.
    /// </summary>
    public async Task FreezeAsync()
    {
        if (!IsRunning || _frozen is not null)
        {
            return;
        }

        var postmaster = PostmasterId() ?? throw new InvalidOperationException("The PostgreSQL server has no postmaster.pid.");
        await SignalAsync("-STOP", [postmaster]);
        _frozen = [postmaster, .. ChildrenOf(postmaster)];
        await SignalAsync("-STOP", _frozen[1..]);
    }

    /// <summary>Resumes a frozen server (SIGCONT to every process that was stopped).</summary>
    public async Task ThawAsync()
    {
        if (_frozen is null)
        {
            return;
        }

        var processes = _frozen;
        _frozen = null;
        // Children first: the postmaster, once running, may fork new backends, which are never stopped.
        await SignalAsync("-CONT", [.. processes[1..], processes[0]]);
    }

    /// <summary>Creates an empty database and returns a connection string for it.</summary>
    public async Task<string> CreateDatabaseAsync(CancellationToken cancellationToken = default)
    {
        var name = UniqueName();
        await ExecuteAsync($"CREATE DATABASE \"{name}\"", cancellationToken);
        return ConnectionStringFor(name);
    }

    /// <summary>
    /// Creates an empty schema in the <c>postgres</c> database and returns a connection string whose
    /// search path is that schema: isolation for one test at a fraction of a database's cost.
    /// </summary>
    public async Task<string> CreateSchemaAsync(CancellationToken cancellationToken = default)
    {
        var name = UniqueName();
        await ExecuteAsync($"CREATE SCHEMA \"{name}\"", cancellationToken);
        return new NpgsqlConnectionStringBuilder(ConnectionString) { SearchPath = name }.ConnectionString;
    }

    /// <summary>Kills the server and deletes its directory.</summary>
    public async Task DisposeAsync()
    {
        if (_root is null)
        {
            return;
        }

        await ThawAsync();
        if (File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
        {
            await RunToolAsync("pg_ctl", ["-D", DataDirectory, "-m", "immediate", "-w", "-t", "10", "stop"]);
            KillLeftoverPostmaster();
        }

        IsRunning = false;
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // A temporary directory left behind is not worth failing the test run for.
        }
        catch (UnauthorizedAccessException)
        {
        }

        _root = null;
    }

    private static string UniqueName() => "test_" + Guid.NewGuid().ToString("N");

    private async Task ExecuteAsync(string sql, CancellationToken cancellationToken)
    {
        // Unpooled: a pooled connection would be dead after a restart of the server.
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(ConnectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        // Only generated names reach this SQL, never input.
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private string ConnectionStringFor(string database) => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1",
        Port = Port,
        Username = "postgres",
        Database = database,
        Timeout = 5,
        IncludeErrorDetail = true,
    }.ConnectionString;

    private async Task WriteSettingsAsync()
    {
        // Later lines win, so appending again after a port clash is enough. Durability settings
        // are off: the cluster is thrown away after the tests.
        var settings = string.Join(
            '\n',
            "",
            $"port = {Port.ToString(CultureInfo.InvariantCulture)}",
            "listen_addresses = '127.0.0.1'",
            $"unix_socket_directories = '{Root}'",
            "fsync = off",
            "synchronous_commit = off",
            "full_page_writes = off",
            "");
        await File.AppendAllTextAsync(Path.Combine(DataDirectory, "postgresql.conf"), settings);
    }

    /// <summary>The postmaster's process id, from the first line of <c>postmaster.pid</c>; null when there is none.</summary>
    private int? PostmasterId()
    {
        var pidFile = Path.Combine(DataDirectory, "postmaster.pid");
        if (!File.Exists(pidFile))
        {
            return null;
        }

        var firstLine = File.ReadLines(pidFile).FirstOrDefault();
        return int.TryParse(firstLine, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : null;
    }

    /// <summary>The processes whose parent is <paramref name="parent"/>, read from <c>/proc/*/stat</c>.</summary>
    private static List<int> ChildrenOf(int parent)
    {
        var children = new List<int>();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            try
            {
                // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ')'.
                var stat = File.ReadAllText(Path.Combine(directory, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (int.Parse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture) == parent)
                {
                    children.Add(pid);
                }
            }
            catch (IOException)
            {
                // The process ended meanwhile.
            }
        }

        return children;
    }

    private static async Task SignalAsync(string signal, IReadOnlyList<int> processes)
    {
        if (processes.Count == 0)
        {
            return;
        }

        var (exitCode, output) = await RunAsync("kill", [signal, .. processes.Select(p => p.ToString(CultureInfo.InvariantCulture))], workingDirectory: null);
        // A backend may end between listing and signalling: that one is simply gone.
        var failures = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(line => !line.Contains("No such process", StringComparison.Ordinal)).ToList();
        if (exitCode != 0 && failures.Count > 0)
        {
            throw new InvalidOperationException($"kill {signal} {string.Join(' ', processes)} failed with exit code {exitCode}.\n{output}");
        }
    }

    private void KillLeftoverPostmaster()
    {
        if (PostmasterId() is not { } pid)
        {
            return;
        }

        try
        {
            using var postmaster = Process.GetProcessById(pid);
            postmaster.Kill(entireProcessTree: true);
            postmaster.WaitForExit(TimeSpan.FromSeconds(10));
        }
        catch (ArgumentException)
        {
            // Already gone.
        }
        catch (InvalidOperationException)
        {
        }
    }

    private async Task<string> LogTailAsync()
    {
        if (!File.Exists(LogFile))
        {
            return "(no server log)";
        }

        var lines = await File.ReadAllLinesAsync(LogFile);
        return "Server log (last lines):\n" + string.Join('\n', lines.TakeLast(20));
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private static string FindBinaries()
    {
        string[] tools = ["initdb", "pg_ctl", "postgres"];
        var candidates = new List<string>();
        if (Environment.GetEnvironmentVariable("MHS_POSTGRES_BIN") is { Length: > 0 } configured)
        {
            candidates.Add(configured);
        }

        candidates.AddRange((Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries));

        // Debian and Ubuntu packages keep the server binaries off PATH, one folder per major version.
        const string debianRoot = "/usr/lib/postgresql";
        if (Directory.Exists(debianRoot))
        {
            candidates.AddRange(Directory.GetDirectories(debianRoot)
                .OrderByDescending(dir => int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var version) ? version : -1)
                .Select(dir => Path.Combine(dir, "bin")));
        }

        return candidates.FirstOrDefault(dir => tools.All(tool => File.Exists(Path.Combine(dir, tool))))
            ?? throw new InvalidOperationException(
                "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found in MHS_POSTGRES_BIN, on PATH or in " +
                "/usr/lib/postgresql/<version>/bin. Install the server (Debian/Ubuntu: apt-get install postgresql) to run these tests.");
    }

    private static async Task<string> EnsureServiceUserAsync()
    {
        await UserCreation.WaitAsync();
        try
        {
            if ((await RunAsync("id", ["-u", ServiceUser], workingDirectory: null)).ExitCode == 0)
            {
                return ServiceUser;
            }

            try
            {
                await RunAsync(
                    "useradd",
                    ["--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", ServiceUser],
                    workingDirectory: null);
            }
            catch (System.ComponentModel.Win32Exception)
            {
                // No useradd on this system.
            }

            // Another test process may have created it meanwhile; either way, ask again.
            return (await RunAsync("id", ["-u", ServiceUser], workingDirectory: null)).ExitCode == 0 ? ServiceUser : FallbackUser;
        }
        finally
        {
            UserCreation.Release();
        }
    }

    private async Task RunToolCheckedAsync(string tool, IReadOnlyList<string> arguments)
    {
        var (exitCode, output) = await RunToolAsync(tool, arguments);
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"{tool} {string.Join(' ', arguments)} failed with exit code {exitCode}.\n{output}");
        }
    }

    private Task<(int ExitCode, string Output)> RunToolAsync(string tool, IReadOnlyList<string> arguments)
    {
        var path = Path.Combine(_binDirectory!, tool);
        return _runAs is null
            ? RunAsync(path, arguments, Root)
            : RunAsync("runuser", ["-u", _runAs, "--", path, .. arguments], Root);
    }

    private static async Task RunCheckedAsync(string fileName, IReadOnlyList<string> arguments)
    {
        var (exitCode, output) = await RunAsync(fileName, arguments, workingDirectory: null);
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"{fileName} {string.Join(' ', arguments)} failed with exit code {exitCode}.\n{output}");
        }
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(
        string fileName, IReadOnlyList<string> arguments, string? workingDirectory)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            // The server user may not be able to read the test's directory, and initdb and
            // pg_ctl fail when they cannot resolve their working directory.
            WorkingDirectory = workingDirectory ?? Path.GetTempPath(),
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {fileName}.");
        using var timeout = new CancellationTokenSource(ToolTimeout);
        var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
            return (process.ExitCode, (await stdout + await stderr).Trim());
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{fileName} {string.Join(' ', arguments)} did not finish within {ToolTimeout.TotalSeconds} s.");
        }
    }
}
