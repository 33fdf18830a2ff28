using MultiHeadServe.Models;

namespace MultiHeadServe.Heads;

/// <summary>One logit through a sigmoid (or one probability as-is) and the decision at the threshold.</summary>
internal sealed class BinaryDecoder : HeadDecoder
{
    private readonly bool _sigmoid;
    private readonly float _threshold;

    public BinaryDecoder(HeadSpec spec, int? outputWidth)
        : base(spec, RequireWidth(spec, 1, outputWidth, "output", "a binary head reads one value per row"))
    {
        _sigmoid = spec.Activation == Activation.Sigmoid;
        _threshold = spec.Threshold;
    }

    private protected override HeadResult DecodeRow(ReadOnlySpan<float> row, DecodeContext context)
    {
        var p = Finite(_sigmoid ? HeadMath.Sigmoid(row[0]) : row[0], "the probability");
        return new BinaryResult(p, MultilabelDecoder.IsPositive(p, _threshold), _threshold);
    }
}
