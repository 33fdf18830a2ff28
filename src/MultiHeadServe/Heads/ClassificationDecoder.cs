using MultiHeadServe.Models;

namespace MultiHeadServe.Heads;

/// <summary>Softmax (or sigmoid, or none for probabilities), arg-max, top k and every class's probability.</summary>
internal sealed class ClassificationDecoder : HeadDecoder
{
    private readonly Activation _activation;
    private readonly int _topK;
    private readonly ClassLabelSource _labels;

    public ClassificationDecoder(HeadSpec spec, IReadOnlyList<string>? labels, int? outputWidth)
        : base(spec, labels is null ? outputWidth : RequireWidth(spec, labels.Count, outputWidth, "labels", $"the labels file has {labels.Count} labels"))
    {
        _activation = spec.Activation;
        _topK = spec.TopK;
        _labels = new ClassLabelSource(labels is null ? null : ClassLabels.FromFile(spec.Name, labels));
    }

    private protected override HeadResult DecodeRow(ReadOnlySpan<float> row, DecodeContext context)
    {
        var probabilities = Probabilities(row, _activation);
        var labels = _labels.For(row.Length);
        var order = Ranking(probabilities);

        var top = new ClassScore[Math.Min(_topK, row.Length)];
        for (var i = 0; i < top.Length; i++)
        {
            var index = order[i];
            top[i] = new ClassScore(labels.Names[index], index, Finite(probabilities[index], "a class probability"));
        }

        var byLabel = new OrderedDictionary<string, float>(row.Length, StringComparer.Ordinal);
        for (var i = 0; i < row.Length; i++)
        {
            byLabel.Add(labels.Names[i], Finite(probabilities[i], "a class probability"));
        }

        return new ClassificationResult(top[0].Label, top[0].Index, top[0].Probability, top, byLabel);
    }

    /// <summary>The row's class probabilities in double.</summary>
    internal static double[] Probabilities(ReadOnlySpan<float> row, Activation activation)
    {
        var probabilities = new double[row.Length];
        switch (activation)
        {
            case Activation.Softmax:
                HeadMath.Softmax(row, probabilities);
                break;
            case Activation.Sigmoid:
                for (var i = 0; i < row.Length; i++)
                {
                    probabilities[i] = HeadMath.Sigmoid(row[i]);
                }

                break;
            default:
                for (var i = 0; i < row.Length; i++)
                {
                    probabilities[i] = row[i];
                }

                break;
        }

        return probabilities;
    }

    /// <summary>Class indices, most probable first; equal scores keep index order so the answer is deterministic.</summary>
    internal static int[] Ranking(ReadOnlySpan<double> scores)
    {
        var order = new int[scores.Length];
        for (var i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }

        var copy = scores.ToArray();
        Array.Sort(order, (a, b) => copy[a] != copy[b] ? copy[b].CompareTo(copy[a]) : a.CompareTo(b));
        return order;
    }
}
