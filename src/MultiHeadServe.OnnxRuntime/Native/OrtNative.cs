using System.Runtime.InteropServices;

namespace MultiHeadServe.OnnxRuntime.Native;

/// <summary>
/// The ONNX Runtime C API function table. Only <c>OrtGetApiBase</c> is imported; everything else is
/// called through the <c>OrtApi</c> struct of function pointers at a pinned API version. The order of
/// that struct is the ABI: each index below is the entry's position in <c>struct OrtApi</c> of
/// <c>onnxruntime_c_api.h</c>, which only ever grows at the end, so a newer runtime serves this table.
/// </summary>
internal static unsafe class OrtNative
{
    /// <summary>The API version this binding was written against (ONNX Runtime 1.13's table, a prefix of every later one).</summary>
    public const uint ApiVersion = 13;

    /// <summary>Entries of <c>struct OrtApi</c> the binding calls. A wrong index crashes the process: every one is exercised by a test.</summary>
    internal enum Entry
    {
        GetErrorCode = 1,
        GetErrorMessage = 2,
        CreateEnv = 3,
        CreateSession = 7,
        CreateSessionFromArray = 8,
        Run = 9,
        CreateSessionOptions = 10,
        SetSessionExecutionMode = 13,
        EnableMemPattern = 16,
        DisableMemPattern = 17,
        EnableCpuMemArena = 18,
        DisableCpuMemArena = 19,
        SetSessionGraphOptimizationLevel = 23,
        SetIntraOpNumThreads = 24,
        SetInterOpNumThreads = 25,
        SessionGetInputCount = 30,
        SessionGetOutputCount = 31,
        SessionGetInputTypeInfo = 33,
        SessionGetOutputTypeInfo = 34,
        SessionGetInputName = 36,
        SessionGetOutputName = 37,
        CreateRunOptions = 39,
        RunOptionsSetTerminate = 46,
        RunOptionsUnsetTerminate = 47,
        CreateTensorWithDataAsOrtValue = 49,
        GetTensorMutableData = 51,
        CastTypeInfoToTensorInfo = 55,
        GetOnnxTypeFromTypeInfo = 56,
        GetTensorElementType = 60,
        GetDimensionsCount = 61,
        GetDimensions = 62,
        GetSymbolicDimensions = 63,
        GetTensorTypeAndShape = 65,
        CreateCpuMemoryInfo = 69,
        AllocatorFree = 76,
        GetAllocatorWithDefaultOptions = 78,
        ReleaseEnv = 92,
        ReleaseStatus = 93,
        ReleaseMemoryInfo = 94,
        ReleaseSession = 95,
        ReleaseValue = 96,
        ReleaseRunOptions = 97,
        ReleaseTypeInfo = 98,
        ReleaseTensorTypeAndShapeInfo = 99,
        ReleaseSessionOptions = 100,
        GetAvailableProviders = 125,
        ReleaseAvailableProviders = 126,
        AddSessionConfigEntry = 130,
        SessionOptionsAppendExecutionProvider_CUDA_V2 = 204,
        CreateCUDAProviderOptions = 205,
        UpdateCUDAProviderOptions = 206,
        ReleaseCUDAProviderOptions = 208,
    }

    private const int TableSize = 209;

    private static readonly void** Table;
    private static readonly byte[] Hits = new byte[TableSize];

    /// <summary>The ONNX Runtime version string the loaded library reports, e.g. "1.30.0".</summary>
    public static readonly string RuntimeVersion;

    /// <summary>Where the native library was loaded from.</summary>
    public static readonly string LibraryPath;

    [StructLayout(LayoutKind.Sequential)]
    private struct OrtApiBase
    {
        public delegate* unmanaged<uint, void**> GetApi;
        public delegate* unmanaged<byte*> GetVersionString;
    }

#pragma warning disable CA1810 // The table must be loaded before any entry is read; a static constructor states that order.
    static OrtNative()
#pragma warning restore CA1810
    {
        (var handle, LibraryPath) = OnnxRuntimeLibrary.Load();
        var getApiBase = (delegate* unmanaged<OrtApiBase*>)NativeLibrary.GetExport(handle, "OrtGetApiBase");
        var apiBase = getApiBase();
        RuntimeVersion = Marshal.PtrToStringUTF8((nint)apiBase->GetVersionString()) ?? "unknown";
        Table = apiBase->GetApi(ApiVersion);
        if (Table == null)
        {
            throw new OnnxRuntimeLoadException(
                $"The ONNX Runtime library at '{LibraryPath}' (version {RuntimeVersion}) does not serve C API version {ApiVersion}.");
        }
    }

    /// <summary>Reads one entry of the table, recording that it was used (the guard test checks every entry is exercised).</summary>
    internal static void* Fn(Entry entry)
    {
        Hits[(int)entry] = 1;
        return Table[(int)entry];
    }

    /// <summary>Entries called at least once in this process.</summary>
    internal static IEnumerable<Entry> UsedEntries() =>
        Enum.GetValues<Entry>().Where(e => Hits[(int)e] != 0);

    /// <summary>
    /// The single checkpoint for <c>OrtStatus*</c>: null means success; anything else becomes an
    /// <see cref="OnnxRuntimeException"/> carrying ORT's code and message, and the status is always released.
    /// </summary>
    internal static void Check(nint status)
    {
        if (status == 0)
        {
            return;
        }

        throw ToException(status);
    }

    internal static OnnxRuntimeException ToException(nint status)
    {
        try
        {
            var code = ((delegate* unmanaged<nint, int>)Fn(Entry.GetErrorCode))(status);
            var message = Marshal.PtrToStringUTF8(((delegate* unmanaged<nint, nint>)Fn(Entry.GetErrorMessage))(status)) ?? "";
            return new OnnxRuntimeException((OrtErrorCode)code, message);
        }
        finally
        {
            ((delegate* unmanaged<nint, void>)Fn(Entry.ReleaseStatus))(status);
        }
    }

    /// <summary>Calls a <c>ReleaseX</c> entry.</summary>
    internal static void Release(Entry release, nint handle) =>
        ((delegate* unmanaged<nint, void>)Fn(release))(handle);

    /// <summary>Frees a string the default allocator handed out (names from the session).</summary>
    internal static void FreeWithDefaultAllocator(nint pointer)
    {
        Check(((delegate* unmanaged<nint, nint, nint>)Fn(Entry.AllocatorFree))(DefaultAllocator, pointer));
    }

    private static nint s_defaultAllocator;

    /// <summary>ORT's default CPU allocator; owned by ORT, never freed.</summary>
    internal static nint DefaultAllocator
    {
        get
        {
            if (s_defaultAllocator == 0)
            {
                nint allocator;
                Check(((delegate* unmanaged<nint*, nint>)Fn(Entry.GetAllocatorWithDefaultOptions))(&allocator));
                s_defaultAllocator = allocator;
            }

            return s_defaultAllocator;
        }
    }
}
