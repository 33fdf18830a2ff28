namespace MultiHeadServe.Tests.Infrastructure;

/// <summary>Paths inside the repository, found from the test binaries by walking up to the solution file.</summary>
internal static class RepositoryPaths
{
    public static string Root { get; } = FindRoot();

    public static string Models => Path.Combine(Root, "models");

    public static string Model(string name) => Path.Combine(Models, name);

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "MultiHeadServe.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("The repository root (MultiHeadServe.sln) was not found above " + AppContext.BaseDirectory);
    }
}
