using System.Runtime.CompilerServices;

namespace MultiHeadServe.Tests.Features.Store;

/// <summary>Finds the demo ranking model's seed CSVs in the repository's <c>models</c> folder.</summary>
internal static class DemoFeatures
{
    /// <summary>The <c>models/ranking/features</c> directory.</summary>
    /// <exception cref="InvalidOperationException">It cannot be found or holds no CSV files.</exception>
    public static string Directory([CallerFilePath] string sourceFile = "")
    {
        // The test binaries normally sit below the repository; the source path is the fallback
        // for builds whose output lives elsewhere.
        var features = new[] { AppContext.BaseDirectory, Path.GetDirectoryName(sourceFile) }
            .Select(start => FindUpwards(start, Path.Combine("models", "ranking", "features")))
            .FirstOrDefault(found => found is not null);

        if (features is null || !System.IO.Directory.EnumerateFiles(features, "*.csv").Any())
        {
            throw new InvalidOperationException(
                "models/ranking/features/*.csv was not found above the test binaries or the test sources; " +
                "generate the demo models first (see models/README.md).");
        }

        return features;
    }

    private static string? FindUpwards(string? start, string relative)
    {
        for (var dir = start is null ? null : new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, relative);
            if (System.IO.Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}
