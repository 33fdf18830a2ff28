using System.Runtime.InteropServices;
using MultiHeadServe.OnnxRuntime.Native;

namespace MultiHeadServe.OnnxRuntime;

/// <summary>ONNX Runtime's log severity (<c>OrtLoggingLevel</c>).</summary>
public enum OrtLoggingLevel
{
    Verbose = 0,
    Info = 1,
    Warning = 2,
    Error = 3,
    Fatal = 4,
}

/// <summary>
/// The process-wide ONNX Runtime environment (<c>OrtEnv</c>): logging and shared state. Every session
/// keeps a reference to it, so disposing the environment while sessions live defers the native release
/// until the last of them is disposed. Thread-safe.
/// </summary>
public sealed unsafe class OrtEnvironment : IDisposable
{
    private static readonly Lock SharedLock = new();
    private static OrtEnvironment? s_shared;

    internal OrtHandle Handle { get; }

    private OrtEnvironment(OrtHandle handle, OrtLoggingLevel level)
    {
        Handle = handle;
        LogLevel = level;
    }

    /// <summary>The log severity the environment was created with.</summary>
    public OrtLoggingLevel LogLevel { get; }

    /// <summary>The version of the loaded ONNX Runtime library, e.g. "1.30.0".</summary>
    public static string RuntimeVersion => OrtNative.RuntimeVersion;

    /// <summary>The file the native library was loaded from.</summary>
    public static string LibraryPath => OrtNative.LibraryPath;

    /// <summary>
    /// The environment shared by the process, created on first use with <paramref name="level"/>.
    /// ONNX Runtime keeps one environment per process, so later calls return the same instance.
    /// </summary>
    public static OrtEnvironment Shared(OrtLoggingLevel level = OrtLoggingLevel.Warning)
    {
        lock (SharedLock)
        {
            return s_shared ??= Create(level, "MultiHeadServe");
        }
    }

    /// <summary>
    /// Creates an environment reference of its own. ONNX Runtime shares one native environment per
    /// process and counts references, so this is for hosts that manage the lifetime explicitly.
    /// </summary>
    public static OrtEnvironment Create(OrtLoggingLevel level, string logId)
    {
        var id = Marshal.StringToCoTaskMemUTF8(logId);
        try
        {
            nint env;
            OrtNative.Check(((delegate* unmanaged<int, nint, nint*, nint>)OrtNative.Fn(OrtNative.Entry.CreateEnv))((int)level, id, &env));
            return new OrtEnvironment(new OrtHandle(env, OrtNative.Entry.ReleaseEnv), level);
        }
        finally
        {
            Marshal.FreeCoTaskMem(id);
        }
    }

    /// <summary>Execution providers compiled into the loaded library (not all are usable on every host).</summary>
    public static IReadOnlyList<string> AvailableProviders()
    {
        nint list;
        int count;
        OrtNative.Check(((delegate* unmanaged<nint*, int*, nint>)OrtNative.Fn(OrtNative.Entry.GetAvailableProviders))(&list, &count));
        try
        {
            var names = new string[count];
            for (var i = 0; i < count; i++)
            {
                names[i] = Marshal.PtrToStringUTF8(((nint*)list)[i]) ?? "";
            }

            return names;
        }
        finally
        {
            OrtNative.Check(((delegate* unmanaged<nint, int, nint>)OrtNative.Fn(OrtNative.Entry.ReleaseAvailableProviders))(list, count));
        }
    }

    /// <summary>Releases this reference; the native environment goes when no session uses it.</summary>
    public void Dispose()
    {
        lock (SharedLock)
        {
            if (ReferenceEquals(s_shared, this))
            {
                s_shared = null;
            }
        }

        Handle.Dispose();
    }
}
