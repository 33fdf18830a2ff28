using MultiHeadServe.Onnx;

namespace MultiHeadServe.Heads;

/// <summary>
/// One ONNX output of a request's rows, in memory the service owns (the run wrote it there): <see cref="Shape"/> is <c>[N]</c>,
/// <c>[N, k]</c> or <c>[N, d1, d2, ...]</c>; row <c>r</c> is request <c>r</c> of the batch. Decoders and
/// loss evaluation read it and never see ONNX Runtime. <see cref="Data"/> may be a slice of a batch's array
/// shared with the other requests of that batch: nothing writes to it after the run.
/// </summary>
/// <param name="Name">The ONNX output name.</param>
/// <param name="Data">Row-major values, <see cref="Rows"/> × <see cref="Width"/> of them.</param>
/// <param name="Shape">The output's shape; the first dimension is the batch.</param>
public sealed record OutputTensor(string Name, ReadOnlyMemory<float> Data, long[] Shape)
{
    /// <summary>
    /// The output's element type. Heads read float32 outputs only (the manifest is checked for it); an output of
    /// another type (an arg-max's int64, a threshold's bool) is served as a tensor through the Open Inference
    /// Protocol, with <see cref="Data"/> empty and its values in <see cref="RawData"/>.
    /// </summary>
    public TensorElementType ElementType { get; init; } = TensorElementType.Float32;

    /// <summary>A non-float32 output's values, little-endian and row-major as the runtime wrote them; empty for float32.</summary>
    public ReadOnlyMemory<byte> RawData { get; init; }

    /// <summary>The batch size, <c>Shape[0]</c>.</summary>
    public int Rows
    {
        get
        {
            CheckShape();
            return (int)Shape[0];
        }
    }

    /// <summary>Values per row: the product of the dimensions after the first; 1 for a shape <c>[N]</c>.</summary>
    public int Width
    {
        get
        {
            CheckShape();
            long width = 1;
            for (var i = 1; i < Shape.Length; i++)
            {
                width *= Shape[i];
            }

            return (int)width;
        }
    }

    /// <summary>The dimensions after the batch dimension (empty for <c>[N]</c>).</summary>
    public ReadOnlySpan<long> RowShape => Shape.AsSpan(1);

    /// <summary>The values of row <paramref name="row"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The batch has no such row.</exception>
    /// <exception cref="InvalidOperationException">The shape and the data disagree.</exception>
    public ReadOnlySpan<float> Row(int row)
    {
        var width = Width;
        var rows = CheckedRows(width);
        ArgumentOutOfRangeException.ThrowIfNegative(row);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(row, rows);
        return Data.Span.Slice(row * width, width);
    }

    /// <summary>Every row, row-major, once the data is checked against the shape.</summary>
    internal ReadOnlySpan<float> AllRows()
    {
        CheckedRows(Width);
        return Data.Span;
    }

    private int CheckedRows(int width)
    {
        var rows = Rows;
        if ((long)rows * width != Data.Length)
        {
            throw new InvalidOperationException(
                $"output '{Name}' holds {Data.Length} values but its shape {FormatShape(Shape)} needs {(long)rows * width}");
        }

        return rows;
    }

    internal static string FormatShape(ReadOnlySpan<long> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";

    private void CheckShape()
    {
        if (Shape is null || Shape.Length == 0)
        {
            throw new InvalidOperationException($"output '{Name}' has no batch dimension");
        }

        long product = 1;
        foreach (var dimension in Shape)
        {
            if (dimension < 0)
            {
                throw new InvalidOperationException($"output '{Name}' has a negative dimension in {FormatShape(Shape)}");
            }

            product *= dimension;
            if (dimension > int.MaxValue || product > Array.MaxLength)
            {
                throw new InvalidOperationException($"output '{Name}' shape {FormatShape(Shape)} is too large");
            }
        }
    }
}
