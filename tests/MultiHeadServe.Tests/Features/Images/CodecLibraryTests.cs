using MultiHeadServe.Features.Images;

namespace MultiHeadServe.Tests.Features.Images;

public sealed class CodecLibraryTests
{
    [Fact]
    public void InstalledCodecsLoadWithEveryEntryPoint()
    {
        ImageDecoder.EnsureCodecsLoaded();
    }

    [Fact]
    public void AMissingLibraryNamesTheDebianPackageToInstall()
    {
        var error = Assert.Throws<DllNotFoundException>(
            () => NativeCodecLibrary.Load("libmultiheadserve-absent.so.0", "libmultiheadserve-absent0"));

        Assert.Contains("libmultiheadserve-absent.so.0", error.Message, StringComparison.Ordinal);
        Assert.Contains("Install the package libmultiheadserve-absent0", error.Message, StringComparison.Ordinal);
    }
}
