namespace MultiHeadServe.Tests.Infrastructure;

/// <summary>
/// Files a test keeps for people to look at after the run (screenshots, generated code): under artifacts/tests in the
/// repository (ignored by git), or under MHS_TEST_ARTIFACTS when set (CI can collect that folder).
/// </summary>
internal static class TestArtifacts
{
    public static string Directory { get; } = Create();

    /// <summary>The path of an artifact; its folder exists.</summary>
    public static string PathOf(string name) => Path.Combine(Directory, name);

    private static string Create()
    {
        var directory = Environment.GetEnvironmentVariable("MHS_TEST_ARTIFACTS") is { Length: > 0 } configured
            ? configured
            : Path.Combine(RepositoryPaths.Root, "artifacts", "tests");
        System.IO.Directory.CreateDirectory(directory);
        return directory;
    }
}
