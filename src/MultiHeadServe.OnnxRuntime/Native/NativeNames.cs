using System.Runtime.InteropServices;
using System.Text;

namespace MultiHeadServe.OnnxRuntime.Native;

/// <summary>UTF-8 copies of the graph's input or output names in native memory, made once at load so a run marshals nothing.</summary>
internal sealed unsafe class NativeNames : IDisposable
{
    private readonly nint[] _pointers;

    public NativeNames(IEnumerable<string> names)
    {
        _pointers = names.Select(Allocate).ToArray();
    }

    public nint this[int index] => _pointers[index];

    private static nint Allocate(string name)
    {
        var bytes = Encoding.UTF8.GetBytes(name);
        var memory = (byte*)NativeMemory.Alloc((nuint)bytes.Length + 1);
        bytes.CopyTo(new Span<byte>(memory, bytes.Length));
        memory[bytes.Length] = 0;
        return (nint)memory;
    }

    public void Dispose()
    {
        for (var i = 0; i < _pointers.Length; i++)
        {
            NativeMemory.Free((void*)_pointers[i]);
            _pointers[i] = 0;
        }
    }
}
