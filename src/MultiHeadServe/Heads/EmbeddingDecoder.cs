using MultiHeadServe.Models;

namespace MultiHeadServe.Heads;

/// <summary>The vector as the model produced it, with its L2 norm (summed in double).</summary>
internal sealed class EmbeddingDecoder(HeadSpec spec, int? outputWidth) : HeadDecoder(spec, outputWidth)
{
    private protected override HeadResult DecodeRow(ReadOnlySpan<float> row, DecodeContext context)
    {
        double sum = 0;
        foreach (var v in row)
        {
            sum += (double)v * v;
        }

        return new EmbeddingResult(row.ToArray(), Finite(Math.Sqrt(sum), "the norm"));
    }
}
