using System.Runtime.InteropServices;

namespace MultiHeadServe.Models;

/// <summary>
/// The C allocator's half of giving memory back after an unload. ONNX Runtime allocates a session's weights, arenas
/// and kernels with <c>malloc</c>; when the session is disposed glibc keeps the freed pages in its arenas for reuse
/// and only returns the tail of the main heap by itself. <c>malloc_trim(0)</c> walks every arena and returns every
/// whole free page to the system. Only on glibc (where other C libraries lack the function, nothing happens).
/// </summary>
internal static partial class NativeHeap
{
    private static volatile bool s_unavailable = !OperatingSystem.IsLinux();

    /// <summary>Returns the C allocator's free pages to the system; false where that is not possible (or nothing was freed).</summary>
    public static bool Trim()
    {
        if (s_unavailable)
        {
            return false;
        }

        try
        {
            return MallocTrim(0) != 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            s_unavailable = true;
            return false;
        }
    }

    [LibraryImport("libc.so.6", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);
}
