using System.Reflection;

namespace MultiHeadServe.Benchmarks.Hosting;

/// <summary>Finds the service's MultiHeadServe.dll: the one this benchmark was built with, unless the command line names another.</summary>
internal static class ServiceAssembly
{
    private const string MetadataKey = "MultiHeadServe.ServiceAssembly";

    /// <exception cref="InvalidOperationException">No built service was found.</exception>
    public static string Locate(string? fromCommandLine, string repositoryRoot)
    {
        if (fromCommandLine is not null)
        {
            return File.Exists(fromCommandLine)
                ? Path.GetFullPath(fromCommandLine)
                : throw new InvalidOperationException($"--service: '{fromCommandLine}' does not exist.");
        }

        var candidates = new List<string>();
        // Written at build time from the service project's own GetTargetPath (see the .csproj).
        var recorded = typeof(ServiceAssembly).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == MetadataKey)?.Value;
        if (!string.IsNullOrEmpty(recorded))
        {
            candidates.Add(recorded);
        }

        var configuration = typeof(ServiceAssembly).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
        candidates.Add(Path.Combine(repositoryRoot, "src", "MultiHeadServe", "bin", configuration, "net10.0", "MultiHeadServe.dll"));
        return candidates.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException(
                $"The service is not built (looked for {string.Join(", ", candidates)}). Build it with the benchmark " +
                "(dotnet build -c Release tests/MultiHeadServe.Benchmarks) or pass --service <path to MultiHeadServe.dll>.");
    }
}
