using MultiHeadServe.Models;

namespace MultiHeadServe.Heads;

/// <summary>An independent sigmoid per label, each compared with the head's threshold.</summary>
internal sealed class MultilabelDecoder : HeadDecoder
{
    private readonly bool _sigmoid;
    private readonly float _threshold;
    private readonly ClassLabelSource _labels;

    public MultilabelDecoder(HeadSpec spec, IReadOnlyList<string>? labels, int? outputWidth)
        : base(spec, labels is null ? outputWidth : RequireWidth(spec, labels.Count, outputWidth, "labels", $"the labels file has {labels.Count} labels"))
    {
        _sigmoid = spec.Activation == Activation.Sigmoid;
        _threshold = spec.Threshold;
        _labels = new ClassLabelSource(labels is null ? null : ClassLabels.FromFile(spec.Name, labels));
    }

    /// <summary>
    /// The decision, made on the float32 values the response shows, so a client reading probability 0.7 and
    /// threshold 0.7 sees a positive decision. Inclusive: a probability equal to the threshold is positive.
    /// </summary>
    internal static bool IsPositive(float probability, float threshold) => probability >= threshold;

    private protected override HeadResult DecodeRow(ReadOnlySpan<float> row, DecodeContext context)
    {
        var labels = _labels.For(row.Length);
        var decisions = new LabelDecision[row.Length];
        var positive = new List<string>();
        for (var i = 0; i < row.Length; i++)
        {
            var p = Finite(_sigmoid ? HeadMath.Sigmoid(row[i]) : row[i], "a label probability");
            var isPositive = IsPositive(p, _threshold);
            decisions[i] = new LabelDecision(labels.Names[i], p, isPositive);
            if (isPositive)
            {
                positive.Add(labels.Names[i]);
            }
        }

        return new MultilabelResult(decisions, positive);
    }
}
