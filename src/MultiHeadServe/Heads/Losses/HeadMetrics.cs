namespace MultiHeadServe.Heads.Losses;

/// <summary>Evaluation metrics, in double.</summary>
internal static class HeadMetrics
{
    /// <summary>
    /// Area under the ROC curve as the Mann–Whitney statistic: the probability that a random positive
    /// scores above a random negative, a tie counting one half (tied scores share their average rank).
    /// Null when a class is absent, since the ratio is then 0/0.
    /// </summary>
    public static double? RocAuc(ReadOnlySpan<double> scores, ReadOnlySpan<bool> positive)
    {
        var n = scores.Length;
        long positives = 0;
        foreach (var p in positive)
        {
            positives += p ? 1 : 0;
        }

        var negatives = n - positives;
        if (n < 2 || positives == 0 || negatives == 0)
        {
            return null;
        }

        var order = new int[n];
        for (var i = 0; i < n; i++)
        {
            order[i] = i;
        }

        var keys = scores.ToArray();
        Array.Sort(keys, order);

        double positiveRankSum = 0;
        for (var start = 0; start < n;)
        {
            var end = start;
            while (end + 1 < n && keys[end + 1] == keys[start])
            {
                end++;
            }

            // Ranks are 1-based; the tied run start..end shares the mean of its ranks.
            var rank = ((start + 1) + (end + 1)) / 2.0;
            for (var i = start; i <= end; i++)
            {
                if (positive[order[i]])
                {
                    positiveRankSum += rank;
                }
            }

            start = end + 1;
        }

        return (positiveRankSum - (positives * (positives + 1) / 2.0)) / ((double)positives * negatives);
    }

    /// <summary>The index of the largest value; the first one on ties, as arg-max in PyTorch and the decoder do.</summary>
    public static int ArgMax(ReadOnlySpan<float> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }

    /// <inheritdoc cref="ArgMax(ReadOnlySpan{float})"/>
    public static int ArgMax(ReadOnlySpan<double> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }

    /// <summary>How many classes score strictly above the target, or equal with a lower index: the target's 0-based rank in the decoder's top-k order.</summary>
    public static int RankOf(ReadOnlySpan<float> scores, int target)
    {
        var rank = 0;
        for (var i = 0; i < scores.Length; i++)
        {
            if (scores[i] > scores[target] || (scores[i] == scores[target] && i < target))
            {
                rank++;
            }
        }

        return rank;
    }
}
