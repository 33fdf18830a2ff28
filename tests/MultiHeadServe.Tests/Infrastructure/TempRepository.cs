using System.Text.Json.Nodes;

namespace MultiHeadServe.Tests.Infrastructure;

/// <summary>A model repository in a temporary folder: copies of demo models whose manifests a test may edit.</summary>
internal sealed class TempRepository : IDisposable
{
    public TempRepository()
    {
        Path = Directory.CreateTempSubdirectory("mhs-repo-").FullName;
    }

    public string Path { get; }

    /// <summary>Copies a demo model (manifest, labels, features, version folders) and lets <paramref name="edit"/> change its manifest.</summary>
    public TempRepository With(string model, Action<JsonObject>? edit = null, string? asName = null)
    {
        var source = RepositoryPaths.Model(model);
        var target = System.IO.Path.Combine(Path, asName ?? model);
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            var relative = System.IO.Path.GetRelativePath(source, file);
            if (relative.EndsWith(".md", StringComparison.Ordinal) || relative.EndsWith(".png", StringComparison.Ordinal))
            {
                continue;
            }

            var destination = System.IO.Path.Combine(target, relative);
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(destination)!);
            File.Copy(file, destination);
        }

        var manifestPath = System.IO.Path.Combine(target, "model.json");
        var manifest = JsonNode.Parse(File.ReadAllText(manifestPath))!.AsObject();
        if (asName is not null)
        {
            manifest["name"] = asName;
        }

        edit?.Invoke(manifest);
        File.WriteAllText(manifestPath, manifest.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        return this;
    }

    /// <summary>Settings that point a <see cref="ServeFactory"/> at this repository.</summary>
    public Dictionary<string, string?> Settings(params (string Key, string? Value)[] extra)
    {
        var settings = new Dictionary<string, string?> { ["ModelRepository:Path"] = Path };
        foreach (var (key, value) in extra)
        {
            settings[key] = value;
        }

        return settings;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
