using System.Runtime.InteropServices;

namespace MultiHeadServe.OnnxRuntime.Native;

/// <summary>Finds and loads <c>libonnxruntime</c>.</summary>
internal static class OnnxRuntimeLibrary
{
    /// <summary>Environment variable naming the library file, e.g. a GPU build of ONNX Runtime on a CUDA host.</summary>
    public const string PathVariable = "MHS_ONNXRUNTIME_PATH";

    public static (nint Handle, string Path) Load()
    {
        var tried = new List<string>();
        foreach (var candidate in Candidates())
        {
            tried.Add(candidate);
            if (NativeLibrary.TryLoad(candidate, out var handle))
            {
                return (handle, candidate);
            }
        }

        throw new OnnxRuntimeLoadException(
            "The ONNX Runtime native library could not be loaded. Tried: " + string.Join(", ", tried) +
            $". Build the solution (it restores libonnxruntime.so.1 next to the binaries) or set {PathVariable} to the library file.");
    }

    private static IEnumerable<string> Candidates()
    {
        var configured = Environment.GetEnvironmentVariable(PathVariable);
        if (!string.IsNullOrWhiteSpace(configured))
        {
            yield return configured;
            yield break;
        }

        var names = OperatingSystem.IsWindows()
            ? ["onnxruntime.dll"]
            : OperatingSystem.IsMacOS() ? ["libonnxruntime.dylib"] : new[] { "libonnxruntime.so.1", "libonnxruntime.so" };
        foreach (var name in names)
        {
            yield return Path.Combine(AppContext.BaseDirectory, name);
        }

        foreach (var name in names)
        {
            yield return name;
        }
    }
}
