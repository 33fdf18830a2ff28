using System.Globalization;
using MultiHeadServe.Models;

namespace MultiHeadServe.Heads.Losses;

/// <summary>
/// Scores one head's output against a request's labels: the head's loss as training defined it, and the
/// metrics a person reads. Built once per head at model load; immutable and thread-safe.
/// </summary>
/// <remarks>
/// The loss is computed in the head's raw output space, the space training minimised: class logits (or
/// probabilities when the activation is none), box values in the head's own format, and for regression
/// heads the output before <c>scale</c> and <c>offset</c>. Regression labels are given in served units and
/// mapped back as <c>(label − offset) / scale</c>; the RMSE and MAE metrics are reported in served units.
/// </remarks>
internal sealed class HeadEvaluator
{
    private readonly Activation _activation;
    private readonly LossOptions _options;
    private readonly ClassLabelSource? _classes;
    private readonly int _topK;
    private readonly float _threshold;
    private readonly double _scale;
    private readonly double _offset;
    private readonly BoxFormat _boxFormat;
    private readonly HeadKindRule _rule;

    private HeadEvaluator(HeadSpec spec, HeadKindRule rule, string loss, IReadOnlyList<string>? labels, LossOptions options)
    {
        HeadName = spec.Name;
        OutputName = spec.Output;
        Kind = spec.Kind;
        LossFunction = loss;
        _rule = rule;
        _activation = spec.Activation;
        _options = options;
        _scale = 1;
        _boxFormat = spec.BoxFormat;
        _topK = spec.TopK;
        _threshold = spec.Threshold;
        if (rule.Takes(HeadOptions.Affine))
        {
            (_scale, _offset) = RegressionDecoder.ScaleAndOffset(spec);
        }

        if (Kind == HeadKind.Classification)
        {
            _classes = new ClassLabelSource(labels is null ? null : ClassLabels.FromFile(spec.Name, labels));
        }
    }

    public string HeadName { get; }

    public string OutputName { get; }

    public HeadKind Kind { get; }

    /// <summary>The loss this head is scored with: the manifest's, or the kind's default.</summary>
    public string LossFunction { get; }

    /// <inheritdoc cref="HeadKindRule.UncertaintyFactor"/>
    public double? UncertaintyFactor => _rule.UncertaintyFactor;

    /// <summary>Whether the head can be evaluated at all: it names a loss, or its kind has a default one.</summary>
    public static bool HasLoss(HeadSpec spec) => spec.Loss is not null || HeadSpecRules.DefaultLoss(spec) is not null;

    /// <exception cref="HeadSpecException">The head's loss is unknown or does not apply to it.</exception>
    public static HeadEvaluator Create(HeadSpec spec, IReadOnlyList<string>? labels = null, LossOptions? options = null)
    {
        var rule = HeadSpecRules.Check(spec);
        options ??= LossOptions.Default;
        if (!(options.HuberDelta > 0 && double.IsFinite(options.HuberDelta)) || !(options.SmoothL1Beta >= 0 && double.IsFinite(options.SmoothL1Beta)))
        {
            throw new ArgumentOutOfRangeException(nameof(options), options, "Huber's delta must be positive and smooth L1's beta non-negative");
        }

        var kind = spec.Kind.ManifestName();
        var loss = spec.Loss ?? HeadSpecRules.DefaultLoss(spec)
            ?? throw new HeadSpecException(spec.Name, "loss", $"this {kind} head has no default loss; name one of {string.Join(", ", rule.Losses)} to evaluate it");
        if (!LossFunctions.All.Contains(loss, StringComparer.Ordinal))
        {
            throw new HeadSpecException(spec.Name, "loss", $"unknown loss '{loss}'; expected one of {string.Join(", ", LossFunctions.All)}");
        }

        if (!rule.Losses.Contains(loss, StringComparer.Ordinal))
        {
            throw new HeadSpecException(spec.Name, "loss", $"loss '{loss}' does not apply to a {kind} head; use {string.Join(" or ", rule.Losses)}");
        }

        if (loss == LossFunctions.SoftmaxCrossEntropy && spec.Activation == Activation.Sigmoid)
        {
            throw new HeadSpecException(
                spec.Name, "loss", "softmax_cross_entropy needs logits (activation softmax) or probabilities (activation none), not sigmoid outputs");
        }

        return new HeadEvaluator(spec, rule, loss, labels, options);
    }

    /// <summary>Scores the whole batch of the head's output against the labels.</summary>
    /// <exception cref="LabelException">The labels do not fit the output.</exception>
    /// <exception cref="HeadOutputException">The output holds NaN or Infinity or does not fit the head.</exception>
    public HeadEvaluation Evaluate(OutputTensor output, HeadLabels labels)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(labels);
        var outputs = CheckedOutput(output);
        var metrics = new OrderedDictionary<string, double?>(StringComparer.Ordinal);
        var loss = Kind switch
        {
            HeadKind.Classification => Classification(output, outputs, labels, metrics),
            HeadKind.Binary or HeadKind.Multilabel => Probabilistic(output, outputs, labels, metrics),
            HeadKind.Regression => Regression(output, outputs, labels, metrics),
            HeadKind.BoundingBox => BoundingBox(output, outputs, labels, metrics),
            _ => Elementwise(outputs, LabelAlignment.Numeric(HeadName, output, labels)),
        };

        if (!double.IsFinite(loss))
        {
            throw new LabelException(HeadName, $"the loss of head '{HeadName}' overflows; its labels are far outside the output's range");
        }

        return new HeadEvaluation(loss, metrics, output.Rows);
    }

    private ReadOnlySpan<float> CheckedOutput(OutputTensor output)
    {
        var values = output.AllRows();
        var width = output.Width;
        var required = _rule.Width ?? _classes?.FromFile?.Count;
        if (width == 0 || (required is { } needed && width != needed))
        {
            throw new HeadOutputException(HeadName, $"output '{output.Name}' has {width} values per row; the head needs {required ?? 1}");
        }

        var bad = HeadMath.FirstNonFinite(values);
        if (bad >= 0)
        {
            throw new HeadOutputException(HeadName, $"output '{output.Name}' holds {HeadMath.Show(values[bad])} at row {bad / width}, column {bad % width}");
        }

        return values;
    }

    private double Classification(OutputTensor output, ReadOnlySpan<float> outputs, HeadLabels labels, OrderedDictionary<string, double?> metrics)
    {
        var k = output.Width;
        var classes = _classes!.For(k);
        var targets = LabelAlignment.ClassTargets(HeadName, output, labels, classes);
        var loss = LossFunctions.CrossEntropy(outputs, targets, k, fromLogits: _activation == Activation.Softmax);

        // Softmax is monotone, so ranking raw outputs ranks probabilities, ties and all, as the decoder does.
        var topK = Math.Min(_topK, k);
        int correct = 0, inTopK = 0;
        for (var r = 0; r < output.Rows; r++)
        {
            var row = outputs.Slice(r * k, k);
            var truth = HeadMetrics.ArgMax(targets.AsSpan(r * k, k));
            correct += HeadMetrics.ArgMax(row) == truth ? 1 : 0;
            inTopK += HeadMetrics.RankOf(row, truth) < topK ? 1 : 0;
        }

        metrics["accuracy"] = (double)correct / output.Rows;
        metrics[string.Create(CultureInfo.InvariantCulture, $"top{topK}Accuracy")] = (double)inTopK / output.Rows;
        return loss;
    }

    private double Probabilistic(OutputTensor output, ReadOnlySpan<float> outputs, HeadLabels labels, OrderedDictionary<string, double?> metrics)
    {
        var targets = LabelAlignment.Numeric(HeadName, output, labels);
        var width = output.Width;
        LabelAlignment.CheckProbabilities(HeadName, targets, width);
        var fromLogits = _activation == Activation.Sigmoid;
        var loss = fromLogits
            ? LossFunctions.BinaryCrossEntropyWithLogits(outputs, targets)
            : LossFunctions.BinaryCrossEntropy(outputs, targets);

        // Decisions as the decoder makes them; a soft target counts as positive from 0.5 up.
        var truth = new bool[targets.Length];
        var correct = 0;
        var exactRows = 0;
        for (var r = 0; r < output.Rows; r++)
        {
            var rowCorrect = true;
            for (var c = 0; c < width; c++)
            {
                var i = (r * width) + c;
                truth[i] = targets[i] >= 0.5;
                var p = (float)(fromLogits ? HeadMath.Sigmoid(outputs[i]) : outputs[i]);
                var agrees = MultilabelDecoder.IsPositive(p, _threshold) == truth[i];
                correct += agrees ? 1 : 0;
                rowCorrect &= agrees;
            }

            exactRows += rowCorrect ? 1 : 0;
        }

        if (Kind == HeadKind.Binary)
        {
            metrics["accuracy"] = (double)correct / targets.Length;

            // Raw outputs rank exactly like probabilities, and unlike sigmoid(z) in double they do not tie at 1.0 for large z.
            var scores = new double[outputs.Length];
            for (var i = 0; i < scores.Length; i++)
            {
                scores[i] = outputs[i];
            }

            metrics["auc"] = HeadMetrics.RocAuc(scores, truth);
        }
        else
        {
            metrics["labelAccuracy"] = (double)correct / targets.Length;
            metrics["exactMatch"] = (double)exactRows / output.Rows;
        }

        return loss;
    }

    private double Regression(OutputTensor output, ReadOnlySpan<float> outputs, HeadLabels labels, OrderedDictionary<string, double?> metrics)
    {
        var served = LabelAlignment.Numeric(HeadName, output, labels);
        var raw = new double[served.Length];
        double squared = 0, absolute = 0;
        for (var i = 0; i < served.Length; i++)
        {
            raw[i] = (served[i] - _offset) / _scale;
            var error = (outputs[i] * _scale) + _offset - served[i];
            squared += error * error;
            absolute += Math.Abs(error);
        }

        metrics["rmse"] = Math.Sqrt(squared / served.Length);
        metrics["mae"] = absolute / served.Length;
        return Elementwise(outputs, raw);
    }

    private double BoundingBox(OutputTensor output, ReadOnlySpan<float> outputs, HeadLabels labels, OrderedDictionary<string, double?> metrics)
    {
        var targets = LabelAlignment.Numeric(HeadName, output, labels);
        double iou = 0;
        for (var r = 0; r < output.Rows; r++)
        {
            var predicted = BoxCorners.From(outputs.Slice(r * 4, 4), _boxFormat).Sorted();
            var truth = BoxCorners.From(targets.AsSpan(r * 4, 4), _boxFormat).Sorted();
            iou += BoxCorners.Iou(predicted, truth);
        }

        metrics["meanIou"] = iou / output.Rows;
        return LossFunction == LossFunctions.Giou
            ? LossFunctions.GeneralizedIouLoss(outputs, targets, _boxFormat)
            : Elementwise(outputs, targets);
    }

    private double Elementwise(ReadOnlySpan<float> outputs, ReadOnlySpan<double> targets) => LossFunction switch
    {
        LossFunctions.Mse => LossFunctions.MeanSquaredError(outputs, targets),
        LossFunctions.Mae => LossFunctions.MeanAbsoluteError(outputs, targets),
        LossFunctions.Huber => LossFunctions.HuberLoss(outputs, targets, _options.HuberDelta),
        _ => LossFunctions.SmoothL1Loss(outputs, targets, _options.SmoothL1Beta),
    };
}

/// <summary>One head's unweighted loss over a batch, its metrics and the number of rows scored.</summary>
internal sealed record HeadEvaluation(double Loss, OrderedDictionary<string, double?> Metrics, int Rows);
