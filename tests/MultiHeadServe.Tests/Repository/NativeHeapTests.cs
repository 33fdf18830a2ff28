using System.Runtime.InteropServices;
using MultiHeadServe.Models;
using MultiHeadServe.Tests.Inference.Engine;

namespace MultiHeadServe.Tests.Repository;

/// <summary>
/// What the trim after an unload gives back: memory the C allocator keeps after <c>free</c>, as a disposed session's
/// leaves it. Serial, so that no other test's unload trims the heap first.
/// </summary>
[Collection(nameof(SerialEngineTests))]
public sealed class NativeHeapTests
{
    private const int Blocks = 16384;
    private const int BlockBytes = 4096;

    [Fact]
    public unsafe void TrimReturnsFreedBlocksInsideTheHeapToTheSystem()
    {
        long allocated = 0, freed = 0, trimmed = 0;
        var trimmedAny = false;

        // One thread does it all, so its blocks come from one arena; the last block stays allocated above the others,
        // so free alone cannot shrink the heap from its top: only the trim can give the 64 MiB back.
        var thread = new Thread(() =>
        {
            var blocks = new nint[Blocks];
            for (var i = 0; i < Blocks; i++)
            {
                var block = (byte*)NativeMemory.Alloc(BlockBytes);
                new Span<byte>(block, BlockBytes).Fill(1);
                blocks[i] = (nint)block;
            }

            allocated = ResidentBytes();
            for (var i = 0; i < Blocks - 1; i++)
            {
                NativeMemory.Free((void*)blocks[i]);
            }

            freed = ResidentBytes();
            trimmedAny = NativeHeap.Trim();
            trimmed = ResidentBytes();
            NativeMemory.Free((void*)blocks[^1]);
        });
        thread.Start();
        thread.Join();

        const long heap = (long)Blocks * BlockBytes;
        Assert.True(freed > allocated - heap / 4, $"free alone gave back {Mib(allocated - freed)} of 64 MiB (the test's premise).");
        Assert.True(trimmedAny);
        Assert.True(trimmed < freed - heap * 3 / 4, $"the trim gave back {Mib(freed - trimmed)} of 64 MiB.");
    }

    private static string Mib(long bytes) => FormattableString.Invariant($"{bytes / 1048576.0:0.0} MiB");

    private static long ResidentBytes()
    {
        var line = File.ReadLines("/proc/self/status").Single(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
    }
}
