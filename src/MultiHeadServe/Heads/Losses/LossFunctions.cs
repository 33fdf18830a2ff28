namespace MultiHeadServe.Heads.Losses;

/// <summary>
/// The per-head losses, computed in double with mean reduction as PyTorch's defaults do, so a loss served
/// here equals the one the training kit reports for the same outputs and targets. Element-wise losses take
/// the whole batch row-major; predictions and targets are already aligned element for element.
/// </summary>
internal static class LossFunctions
{
    public const string Mse = "mse";
    public const string Mae = "mae";
    public const string Huber = "huber";
    public const string Bce = "bce";
    public const string SoftmaxCrossEntropy = "softmax_cross_entropy";
    public const string SmoothL1 = "smooth_l1";
    public const string Giou = "giou";

    public static readonly string[] All = [Mse, Mae, Huber, Bce, SoftmaxCrossEntropy, SmoothL1, Giou];

    /// <summary>Probabilities are clamped this far from 0 and 1 before their log is taken, as Keras does.</summary>
    public const double ProbabilityEpsilon = 1e-7;

    /// <summary>mean((p - y)²).</summary>
    public static double MeanSquaredError(ReadOnlySpan<float> predictions, ReadOnlySpan<double> targets)
    {
        double sum = 0;
        for (var i = 0; i < targets.Length; i++)
        {
            var d = predictions[i] - targets[i];
            sum += d * d;
        }

        return sum / targets.Length;
    }

    /// <summary>mean(|p - y|).</summary>
    public static double MeanAbsoluteError(ReadOnlySpan<float> predictions, ReadOnlySpan<double> targets)
    {
        double sum = 0;
        for (var i = 0; i < targets.Length; i++)
        {
            sum += Math.Abs(predictions[i] - targets[i]);
        }

        return sum / targets.Length;
    }

    /// <summary>PyTorch's <c>HuberLoss</c>: 0.5·d² where |d| &lt; δ, else δ·(|d| − 0.5·δ); mean.</summary>
    public static double HuberLoss(ReadOnlySpan<float> predictions, ReadOnlySpan<double> targets, double delta)
    {
        double sum = 0;
        for (var i = 0; i < targets.Length; i++)
        {
            var d = Math.Abs(predictions[i] - targets[i]);
            sum += d < delta ? 0.5 * d * d : delta * (d - (0.5 * delta));
        }

        return sum / targets.Length;
    }

    /// <summary>PyTorch's <c>SmoothL1Loss</c>: 0.5·d²/β where |d| &lt; β, else |d| − 0.5·β; mean. β = 0 is L1.</summary>
    public static double SmoothL1Loss(ReadOnlySpan<float> predictions, ReadOnlySpan<double> targets, double beta)
    {
        double sum = 0;
        for (var i = 0; i < targets.Length; i++)
        {
            var d = Math.Abs(predictions[i] - targets[i]);
            sum += d < beta ? 0.5 * d * d / beta : d - (0.5 * beta);
        }

        return sum / targets.Length;
    }

    /// <summary>
    /// Binary cross-entropy from logits z: max(z, 0) − z·y + log(1 + e^−|z|); mean. Never evaluates
    /// sigmoid(z) itself, so large |z| neither overflows nor loses the loss to log(0).
    /// </summary>
    public static double BinaryCrossEntropyWithLogits(ReadOnlySpan<float> logits, ReadOnlySpan<double> targets)
    {
        double sum = 0;
        for (var i = 0; i < targets.Length; i++)
        {
            double z = logits[i];
            sum += Math.Max(z, 0) - (z * targets[i]) + LogOnePlus(Math.Exp(-Math.Abs(z)));
        }

        return sum / targets.Length;
    }

    /// <summary>Binary cross-entropy from probabilities, clamped to [1e-7, 1 − 1e-7]: −(y·log p + (1 − y)·log(1 − p)); mean.</summary>
    public static double BinaryCrossEntropy(ReadOnlySpan<float> probabilities, ReadOnlySpan<double> targets)
    {
        double sum = 0;
        for (var i = 0; i < targets.Length; i++)
        {
            var p = Math.Clamp(probabilities[i], ProbabilityEpsilon, 1 - ProbabilityEpsilon);
            var y = targets[i];
            sum -= (y * Math.Log(p)) + ((1 - y) * Math.Log(1 - p));
        }

        return sum / targets.Length;
    }

    /// <summary>
    /// Cross-entropy of each row against a target distribution (one-hot for a class index): from logits
    /// Σ_c q_c·(logsumexp(z) − z_c), from probabilities −Σ_c q_c·log(max(p_c, 1e-7)); mean over rows.
    /// </summary>
    public static double CrossEntropy(ReadOnlySpan<float> outputs, ReadOnlySpan<double> targets, int classes, bool fromLogits)
    {
        var rows = targets.Length / classes;
        double sum = 0;
        for (var r = 0; r < rows; r++)
        {
            var row = outputs.Slice(r * classes, classes);
            var target = targets.Slice(r * classes, classes);
            var logNormaliser = fromLogits ? HeadMath.LogSumExp(row) : 0;
            for (var c = 0; c < classes; c++)
            {
                if (target[c] == 0)
                {
                    continue;
                }

                var logP = fromLogits ? row[c] - logNormaliser : Math.Log(Math.Clamp(row[c], ProbabilityEpsilon, 1));
                sum -= target[c] * logP;
            }
        }

        return sum / rows;
    }

    /// <summary>mean over rows of 1 − GIoU, both boxes read in <paramref name="format"/> and converted to sorted corners.</summary>
    public static double GeneralizedIouLoss(ReadOnlySpan<float> predictions, ReadOnlySpan<double> targets, BoxFormat format)
    {
        var rows = targets.Length / 4;
        double sum = 0;
        for (var r = 0; r < rows; r++)
        {
            var predicted = BoxCorners.From(predictions.Slice(r * 4, 4), format).Sorted();
            var truth = BoxCorners.From(targets.Slice(r * 4, 4), format).Sorted();
            sum += 1 - BoxCorners.GeneralizedIou(predicted, truth);
        }

        return sum / rows;
    }

    /// <summary>
    /// log(1 + x), accurate for tiny x where 1 + x rounds: the rounding error of u = 1 + x cancels in
    /// log(u)·x/(u − 1).
    /// </summary>
    internal static double LogOnePlus(double x)
    {
        var u = 1 + x;
        return u == 1 ? x : Math.Log(u) * x / (u - 1);
    }
}
