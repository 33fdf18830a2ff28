using System.Globalization;

namespace MultiHeadServe.Tests.Infrastructure;

/// <summary>The CPU time one named thread of this process has used, read from Linux's per-thread scheduler statistics.</summary>
internal sealed class ThreadCpu
{
    private readonly string _schedstat;

    private ThreadCpu(string schedstat) => _schedstat = schedstat;

    /// <summary>Time on a CPU so far (the first field of <c>/proc/self/task/&lt;tid&gt;/schedstat</c>, in nanoseconds).</summary>
    public TimeSpan Elapsed =>
        TimeSpan.FromTicks(long.Parse(File.ReadAllText(_schedstat).Split(' ')[0], CultureInfo.InvariantCulture) / 100);

    /// <summary>Finds the thread whose name is <paramref name="name"/> (Linux keeps the first 15 characters).</summary>
    public static ThreadCpu Find(string name)
    {
        var kernelName = name.Length > 15 ? name[..15] : name;
        var matches = Directory.EnumerateDirectories("/proc/self/task")
            .Where(task => NameOf(task) == kernelName)
            .ToList();
        var task = Assert.Single(matches);
        return new ThreadCpu(Path.Combine(task, "schedstat"));
    }

    /// <summary>A thread's name, or null when it ended while the threads were listed (the other tests' threads come and go).</summary>
    private static string? NameOf(string task)
    {
        try
        {
            return File.ReadAllText(Path.Combine(task, "comm")).TrimEnd('\n');
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
