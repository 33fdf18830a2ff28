namespace MultiHeadServe.Tests.Features.Store;

/// <summary>A directory of its own for one test, deleted afterwards.</summary>
internal sealed class TemporaryDirectory : IDisposable
{
    public TemporaryDirectory() => Path = Directory.CreateTempSubdirectory("mhs-store-").FullName;

    public string Path { get; }

    /// <summary>Writes <paramref name="lines"/> (newline-terminated) to <paramref name="name"/> and returns its path.</summary>
    public string Write(string name, params string[] lines) => Write(Path, name, lines);

    /// <inheritdoc cref="Write(string, string[])" />
    public static string Write(string directory, string name, params string[] lines)
    {
        var path = System.IO.Path.Combine(directory, name);
        File.WriteAllText(path, string.Concat(lines.Select(line => line + "\n")));
        return path;
    }

    public static void Delete(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: the operating system cleans its temporary directory eventually.
        }
    }

    public void Dispose() => Delete(Path);
}
