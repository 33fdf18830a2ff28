using System.Globalization;

namespace MultiHeadServe.Heads;

/// <summary>Numerically stable activations, in double whatever the model's precision.</summary>
internal static class HeadMath
{
    /// <summary>Softmax of <paramref name="logits"/> into <paramref name="probabilities"/>; shifting by the maximum keeps exp from overflowing.</summary>
    public static void Softmax(ReadOnlySpan<float> logits, Span<double> probabilities)
    {
        double max = double.NegativeInfinity;
        foreach (var z in logits)
        {
            max = Math.Max(max, z);
        }

        double sum = 0;
        for (var i = 0; i < logits.Length; i++)
        {
            probabilities[i] = Math.Exp(logits[i] - max);
            sum += probabilities[i];
        }

        for (var i = 0; i < logits.Length; i++)
        {
            probabilities[i] /= sum;
        }
    }

    /// <summary>log Σ exp(z_i), shifted by the maximum so no term overflows.</summary>
    public static double LogSumExp(ReadOnlySpan<float> logits)
    {
        double max = double.NegativeInfinity;
        foreach (var z in logits)
        {
            max = Math.Max(max, z);
        }

        double sum = 0;
        foreach (var z in logits)
        {
            sum += Math.Exp(z - max);
        }

        return max + Math.Log(sum);
    }

    /// <summary>1 / (1 + e^-z), written so that neither branch computes exp of a large positive number.</summary>
    public static double Sigmoid(double z)
    {
        if (z >= 0)
        {
            return 1.0 / (1.0 + Math.Exp(-z));
        }

        var e = Math.Exp(z);
        return e / (1.0 + e);
    }

    /// <summary>A number for a message, the same on every culture: 0.5, NaN, Infinity, -Infinity.</summary>
    public static string Show(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>The first index whose value is not finite, or -1.</summary>
    public static int FirstNonFinite(ReadOnlySpan<float> values)
    {
        for (var i = 0; i < values.Length; i++)
        {
            if (!float.IsFinite(values[i]))
            {
                return i;
            }
        }

        return -1;
    }
}
