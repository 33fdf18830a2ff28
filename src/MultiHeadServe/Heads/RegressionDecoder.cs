using MultiHeadServe.Models;

namespace MultiHeadServe.Heads;

/// <summary><c>raw * scale + offset</c>: the model's output in the units the client asked for.</summary>
internal sealed class RegressionDecoder : HeadDecoder
{
    private readonly double _scale;
    private readonly double _offset;

    public RegressionDecoder(HeadSpec spec, int? outputWidth)
        : base(spec, outputWidth)
    {
        (_scale, _offset) = ScaleAndOffset(spec);
    }

    /// <summary>The head's affine map, as the manifest wrote it (checked by <see cref="HeadSpecRules.Check"/>).</summary>
    internal static (double Scale, double Offset) ScaleAndOffset(HeadSpec spec) =>
        (HeadSpecRules.ManifestDouble(spec.Scale), HeadSpecRules.ManifestDouble(spec.Offset));

    private protected override HeadResult DecodeRow(ReadOnlySpan<float> row, DecodeContext context)
    {
        if (row.Length == 1)
        {
            return new RegressionResult { Value = Finite((row[0] * _scale) + _offset, "the value") };
        }

        var values = new float[row.Length];
        for (var i = 0; i < row.Length; i++)
        {
            values[i] = Finite((row[i] * _scale) + _offset, $"value {i}");
        }

        return new RegressionResult { Values = values };
    }
}
