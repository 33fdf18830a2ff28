using System.Runtime.InteropServices;

namespace MultiHeadServe.Features.Images;

/// <summary>
/// Loads a system codec library by its soname and resolves its exports. Entry points are read
/// once into function pointers instead of going through DllImport, so no DllImportResolver is
/// registered on the service assembly (there can only be one) and a missing library surfaces
/// as one clear message naming the Debian package, not as an EntryPointNotFoundException on
/// the first request.
/// </summary>
/// <remarks>Loaded libraries stay loaded for the life of the process.</remarks>
internal readonly struct NativeCodecLibrary
{
    private readonly IntPtr _handle;

    private NativeCodecLibrary(string soname, string debianPackage, IntPtr handle)
    {
        Soname = soname;
        DebianPackage = debianPackage;
        _handle = handle;
    }

    public string Soname { get; }

    public string DebianPackage { get; }

    /// <param name="soname">The file name the dynamic loader looks up, with its ABI version.</param>
    /// <param name="debianPackage">What to install, as the message should tell the operator.</param>
    /// <exception cref="DllNotFoundException">The library is not installed.</exception>
    public static NativeCodecLibrary Load(string soname, string debianPackage)
    {
        if (!NativeLibrary.TryLoad(soname, out var handle))
        {
            throw new DllNotFoundException(
                $"{soname} could not be loaded; image inputs need it. Install the package {debianPackage}.");
        }

        return new NativeCodecLibrary(soname, debianPackage, handle);
    }

    /// <exception cref="EntryPointNotFoundException">The library is too old or not the one expected.</exception>
    public IntPtr Export(string name)
    {
        if (!NativeLibrary.TryGetExport(_handle, name, out var address))
        {
            throw new EntryPointNotFoundException(
                $"{Soname} has no export {name}; install the version Debian ships: {DebianPackage}.");
        }

        return address;
    }
}
