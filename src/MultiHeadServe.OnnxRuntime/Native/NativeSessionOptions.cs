using System.Runtime.InteropServices;

namespace MultiHeadServe.OnnxRuntime.Native;

/// <summary>Builds a native <c>OrtSessionOptions</c> from the managed <see cref="SessionOptions"/>.</summary>
internal static unsafe class NativeSessionOptions
{
    public static OrtHandle Build(SessionOptions options, bool withCuda)
    {
        nint so;
        OrtNative.Check(((delegate* unmanaged<nint*, nint>)OrtNative.Fn(OrtNative.Entry.CreateSessionOptions))(&so));
        var handle = new OrtHandle(so, OrtNative.Entry.ReleaseSessionOptions);
        try
        {
            SetInt(so, OrtNative.Entry.SetSessionGraphOptimizationLevel, (int)options.GraphOptimizationLevel);
            SetInt(so, OrtNative.Entry.SetSessionExecutionMode, (int)options.ExecutionMode);
            SetInt(so, OrtNative.Entry.SetIntraOpNumThreads, options.IntraOpThreads);
            SetInt(so, OrtNative.Entry.SetInterOpNumThreads, options.InterOpThreads);
            Call(so, options.EnableMemoryPattern ? OrtNative.Entry.EnableMemPattern : OrtNative.Entry.DisableMemPattern);
            Call(so, options.EnableCpuMemoryArena ? OrtNative.Entry.EnableCpuMemArena : OrtNative.Entry.DisableCpuMemArena);
            foreach (var (key, value) in options.ConfigEntries)
            {
                AddConfigEntry(so, key, value);
            }

            if (withCuda)
            {
                AppendCuda(so, options.CudaDeviceId);
            }

            return handle;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static void SetInt(nint so, OrtNative.Entry entry, int value) =>
        OrtNative.Check(((delegate* unmanaged<nint, int, nint>)OrtNative.Fn(entry))(so, value));

    private static void Call(nint so, OrtNative.Entry entry) =>
        OrtNative.Check(((delegate* unmanaged<nint, nint>)OrtNative.Fn(entry))(so));

    private static void AddConfigEntry(nint so, string key, string value)
    {
        var k = Marshal.StringToCoTaskMemUTF8(key);
        var v = Marshal.StringToCoTaskMemUTF8(value);
        try
        {
            OrtNative.Check(((delegate* unmanaged<nint, nint, nint, nint>)OrtNative.Fn(OrtNative.Entry.AddSessionConfigEntry))(so, k, v));
        }
        finally
        {
            Marshal.FreeCoTaskMem(k);
            Marshal.FreeCoTaskMem(v);
        }
    }

    private static void AppendCuda(nint so, int deviceId)
    {
        nint cuda;
        OrtNative.Check(((delegate* unmanaged<nint*, nint>)OrtNative.Fn(OrtNative.Entry.CreateCUDAProviderOptions))(&cuda));
        using var cudaHandle = new OrtHandle(cuda, OrtNative.Entry.ReleaseCUDAProviderOptions);
        // Device 0 is the provider's default; other devices are set through the options' key/value interface.
        if (deviceId != 0)
        {
            var key = Marshal.StringToCoTaskMemUTF8("device_id");
            var value = Marshal.StringToCoTaskMemUTF8(deviceId.ToString(System.Globalization.CultureInfo.InvariantCulture));
            try
            {
                OrtNative.Check(((delegate* unmanaged<nint, nint*, nint*, nuint, nint>)OrtNative.Fn(OrtNative.Entry.UpdateCUDAProviderOptions))(
                    cuda, &key, &value, 1));
            }
            finally
            {
                Marshal.FreeCoTaskMem(key);
                Marshal.FreeCoTaskMem(value);
            }
        }

        OrtNative.Check(((delegate* unmanaged<nint, nint, nint>)OrtNative.Fn(OrtNative.Entry.SessionOptionsAppendExecutionProvider_CUDA_V2))(so, cuda));
    }

    /// <summary>The provider libraries the CUDA execution provider loads from the directory of <c>libonnxruntime</c>.</summary>
    internal static readonly string[] CudaProviderLibraries = ["libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"];

    /// <summary>
    /// Turns ONNX Runtime's CUDA failure into a reason an operator can act on: which provider library is
    /// missing and where it was looked for, or, when the libraries are there, ONNX Runtime's own words
    /// (no GPU, a missing CUDA/cuDNN runtime, ...).
    /// </summary>
    internal static string DescribeCudaFailure(string runtimeMessage)
    {
        var directory = Path.GetDirectoryName(OrtNative.LibraryPath);
        if (string.IsNullOrEmpty(directory))
        {
            directory = AppContext.BaseDirectory;
        }

        var missing = CudaProviderLibraries.Where(name => !File.Exists(Path.Combine(directory, name))).ToList();
        var ortSays = runtimeMessage.Trim();
        return missing.Count > 0
            ? $"the CUDA provider {(missing.Count == 1 ? "library" : "libraries")} {string.Join(" and ", missing)} {(missing.Count == 1 ? "is" : "are")} missing from {directory} " +
              $"(install a GPU build of ONNX Runtime and point {OnnxRuntimeLibrary.PathVariable} at its libonnxruntime.so). ONNX Runtime said: {ortSays}"
            : $"ONNX Runtime could not start the CUDA execution provider: {ortSays}";
    }
}
