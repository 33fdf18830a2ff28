using MultiHeadServe.OnnxRuntime.Native;

namespace MultiHeadServe.OnnxRuntime;

/// <summary>
/// Per-run options (<c>OrtRunOptions</c>). <see cref="Terminate"/> may be called from any thread to
/// make a run in progress fail with an <see cref="OnnxRuntimeException"/>; <see cref="Reset"/> clears
/// the flag so the options can serve another run. One instance should serve one run at a time.
/// </summary>
public sealed unsafe class OrtRunOptions : IDisposable
{
    internal OrtHandle Handle { get; }

    public OrtRunOptions()
    {
        nint options;
        OrtNative.Check(((delegate* unmanaged<nint*, nint>)OrtNative.Fn(OrtNative.Entry.CreateRunOptions))(&options));
        Handle = new OrtHandle(options, OrtNative.Entry.ReleaseRunOptions);
    }

    /// <summary>Asks every run using these options to stop as soon as possible.</summary>
    public void Terminate() => Call(OrtNative.Entry.RunOptionsSetTerminate);

    /// <summary>Clears the terminate flag.</summary>
    public void Reset() => Call(OrtNative.Entry.RunOptionsUnsetTerminate);

    private void Call(OrtNative.Entry entry)
    {
        var added = false;
        Handle.DangerousAddRef(ref added);
        try
        {
            OrtNative.Check(((delegate* unmanaged<nint, nint>)OrtNative.Fn(entry))(Handle.DangerousGetHandle()));
        }
        finally
        {
            if (added)
            {
                Handle.DangerousRelease();
            }
        }
    }

    public void Dispose() => Handle.Dispose();
}
