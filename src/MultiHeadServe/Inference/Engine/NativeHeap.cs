using System.Runtime.InteropServices;

namespace MultiHeadServe.Inference.Engine;

/// <summary>
/// Gives freed native memory back to the operating system. A disposed session frees its weights and arena into the C
/// allocator, which on glibc keeps much of it in per-thread arenas: without a trim, every reload leaves the resident
/// size a little higher although nothing leaks. Called after a model version is disposed; a no-op where the C
/// library has no <c>malloc_trim</c> (musl, macOS, Windows).
/// </summary>
internal static partial class NativeHeap
{
    private static int s_unavailable;

    public static void Trim()
    {
        if (!OperatingSystem.IsLinux() || Volatile.Read(ref s_unavailable) != 0)
        {
            return;
        }

        try
        {
            _ = MallocTrim(0);
        }
        catch (Exception ex) when (ex is EntryPointNotFoundException or DllNotFoundException)
        {
            Volatile.Write(ref s_unavailable, 1);
        }
    }

    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);
}
