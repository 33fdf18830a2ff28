using System.Diagnostics;

namespace MultiHeadServe.Onnx.Tests;

/// <summary>
/// <c>mhs</c> as a .NET tool, the way the README installs it: packed, installed into a tool path and, separately,
/// restored through the repository's tool manifest, then run on a demo model. Only the freshly packed package is a
/// source (a NuGet configuration of its own, an empty package cache), so nothing else answers for it.
/// </summary>
public sealed class MhsToolTests : IDisposable
{
    private readonly DirectoryInfo folder = Directory.CreateTempSubdirectory("mhs-tool-tests-");

    public void Dispose() => folder.Delete(recursive: true);

    [Fact]
    public async Task ThePackedToolInstallsAndRunsAsMhs()
    {
        var root = PretrainedBackbone.RepositoryRoot();
        var packages = Path.Combine(folder.FullName, "packages");
        // Built and restored in a folder of its own: the checkout's obj folders are shared with the container test's
        // publish for linux-x64, which runs at the same time, and a restore without a runtime would replace its assets.
        var (packed, packOutput) = await RunAsync("dotnet", root, ownCache: false,
            "pack", Path.Combine(root, "src", "MultiHeadServe.Cli"), "-c", "Release", "-o", packages, "-p:BuildObjectsMembers=false", "-nologo",
            "--artifacts-path", Path.Combine(folder.FullName, "build"));
        Assert.True(packed == 0, packOutput);
        // What a package browser shows: the tool's readme, naming its commands.
        using (var package = System.IO.Compression.ZipFile.OpenRead(Directory.GetFiles(packages, "MultiHeadServe.Cli.*.nupkg").Single()))
        using (var readme = new StreamReader(package.GetEntry("README.md")!.Open()))
        {
            Assert.Contains("mhs models list", await readme.ReadToEndAsync(), StringComparison.Ordinal);
        }

        var config = Path.Combine(folder.FullName, "nuget.config");
        await File.WriteAllTextAsync(config, $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="local" value="{packages}" />
              </packageSources>
            </configuration>
            """);
        var model = Path.Combine(root, "models", "shapes", "1", "model.onnx");

        // Into a tool path: the command is mhs itself.
        var tools = Path.Combine(folder.FullName, "tools");
        var (installed, installOutput) = await RunAsync("dotnet", folder.FullName,
            "tool", "install", "MultiHeadServe.Cli", "--tool-path", tools, "--configfile", config);
        Assert.True(installed == 0, installOutput);
        var (code, output) = await RunAsync(Path.Combine(tools, "mhs"), folder.FullName, "inspect", model);
        Assert.True(code == 0, output);
        Assert.Contains("class_logits", output, StringComparison.Ordinal);
        Assert.Contains("[batch, 3, 64, 64]", output, StringComparison.Ordinal);

        // fuse and prune as the README runs them, with the installed command.
        var ranking = Path.Combine(root, "models", "ranking", "1");
        var fused = Path.Combine(folder.FullName, "ranking.onnx");
        var (fuseCode, fuseOutput) = await RunAsync(Path.Combine(tools, "mhs"), folder.FullName, "fuse", fused,
            Path.Combine(ranking, "click.onnx"), Path.Combine(ranking, "dwell.onnx"), Path.Combine(ranking, "revenue.onnx"));
        Assert.True(fuseCode == 0, fuseOutput);
        var (pruneCode, pruneOutput) = await RunAsync(Path.Combine(tools, "mhs"), folder.FullName, "prune", fused, Path.Combine(folder.FullName, "click_only.onnx"), "--keep", "click_logit");
        Assert.True(pruneCode == 0, pruneOutput);
        var pruned = OnnxModel.Load(Path.Combine(folder.FullName, "click_only.onnx"));
        Assert.Equal(["click_logit"], pruned.Outputs.Select(o => o.Name));
        Assert.Equal("click", pruned.Metadata[ModelFusion.MembersMetadataKey]);

        // compose: a backbone and a head joined at an intermediate value, the batch made dynamic.
        new OnnxModel(SmallVisionModels.Backbone()).Save(Path.Combine(folder.FullName, "backbone.onnx"));
        new OnnxModel(SmallVisionModels.BoxHead()).Save(Path.Combine(folder.FullName, "box.onnx"));
        var (composeCode, composeOutput) = await RunAsync(Path.Combine(tools, "mhs"), folder.FullName, "compose",
            Path.Combine(folder.FullName, "member.onnx"), Path.Combine(folder.FullName, "backbone.onnx"), Path.Combine(folder.FullName, "box.onnx"),
            "--map", "feature_map=feature_map", "--backbone-outputs", "None", "--dynamic-batch");
        Assert.True(composeCode == 0, composeOutput);
        Assert.Contains("outputs bbox [batch, 4]", composeOutput, StringComparison.Ordinal);

        // Through the repository's manifest (.config/dotnet-tools.json): dotnet tool restore, then dotnet mhs.
        var project = Directory.CreateDirectory(Path.Combine(folder.FullName, "project", ".config")).Parent!.FullName;
        File.Copy(Path.Combine(root, ".config", "dotnet-tools.json"), Path.Combine(project, ".config", "dotnet-tools.json"));
        var (restored, restoreOutput) = await RunAsync("dotnet", project, "tool", "restore", "--configfile", config);
        Assert.True(restored == 0, restoreOutput);
        var (ran, manifestOutput) = await RunAsync("dotnet", project, "mhs", "inspect", model, "--json");
        Assert.True(ran == 0, manifestOutput + "\nafter dotnet tool restore:\n" + restoreOutput);
        Assert.Contains("\"class_logits\"", manifestOutput, StringComparison.Ordinal);
    }

    private Task<(int ExitCode, string Output)> RunAsync(string file, string directory, params string[] arguments) =>
        RunAsync(file, directory, ownCache: true, arguments);

    private async Task<(int ExitCode, string Output)> RunAsync(string file, string directory, bool ownCache, params string[] arguments)
    {
        var start = new ProcessStartInfo(file)
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        // A cache of its own: an older package of the same version elsewhere must not stand in for the one just packed.
        // (Packing restores the tool's own dependencies from the usual cache.)
        if (ownCache)
        {
            start.Environment["NUGET_PACKAGES"] = Path.Combine(folder.FullName, "nuget-packages");
            // And a tool-resolver cache of its own: entries left by earlier runs point into their deleted folders.
            start.Environment["DOTNET_CLI_HOME"] = Path.Combine(folder.FullName, "cli-home");
        }

        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await output + await error);
    }
}
