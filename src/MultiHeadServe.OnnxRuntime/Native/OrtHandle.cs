using System.Runtime.InteropServices;

namespace MultiHeadServe.OnnxRuntime.Native;

/// <summary>
/// One SafeHandle type for every native ORT object: it remembers which <c>ReleaseX</c> entry frees it.
/// Releasing runs once, even when <see cref="IDisposable.Dispose"/> is called twice or the finalizer runs.
/// </summary>
internal sealed class OrtHandle : SafeHandle
{
    private readonly OrtNative.Entry _release;

    public OrtHandle(nint handle, OrtNative.Entry release)
        : base(0, ownsHandle: true)
    {
        _release = release;
        SetHandle(handle);
    }

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        OrtNative.Release(_release, handle);
        return true;
    }
}
