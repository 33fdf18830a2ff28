namespace MultiHeadServe.Heads.Losses;

/// <summary>
/// Lines a head's labels up with its output, element for element, or says exactly why they do not line up.
/// Labels are never broadcast: the row counts must be equal, and the values per row must match the
/// output's row shape. The one tolerated difference is a trailing dimension of 1, dropped on both sides, so
/// labels <c>[N, 1]</c> score against an output <c>[N]</c> (and the reverse) row by row, as the same N
/// values. (Broadcasting would pair every label with every output, an N × N loss nobody trained.)
/// </summary>
internal static class LabelAlignment
{
    /// <summary>
    /// Numeric labels shaped like <paramref name="output"/>: one finite value per output value, row-major.
    /// </summary>
    public static double[] Numeric(string head, OutputTensor output, HeadLabels labels)
    {
        var values = NumericValues(head, labels, "numbers");
        var shape = CheckedShape(head, labels);
        CheckRows(head, output, shape);
        if (!SameRowShape(shape.AsSpan(1), output.RowShape))
        {
            throw WidthMismatch(head, output, shape);
        }

        CheckFinite(head, values, output.Width);
        return values;
    }

    /// <summary>
    /// Classification labels as one target distribution per row (one-hot for a class), from class names,
    /// class indices (<c>[N]</c> or <c>[N, 1]</c>) or probability rows shaped like the output.
    /// </summary>
    public static double[] ClassTargets(string head, OutputTensor output, HeadLabels labels, ClassLabels classes)
    {
        var k = output.Width;
        var rows = output.Rows;
        var targets = new double[(long)rows * k];
        if (labels.ClassNames is { } names)
        {
            if (names.Length != rows)
            {
                throw new LabelException(head, $"head '{head}' has {rows} output rows but {names.Length} class names in its labels");
            }

            for (var r = 0; r < rows; r++)
            {
                if (names[r] is null || !classes.TryGetIndex(names[r], out var index))
                {
                    throw new LabelException(head, $"labels.{head}[{r}] is '{names[r]}', not a class of head '{head}'; valid labels: {classes.Describe()}");
                }

                targets[(r * k) + index] = 1;
            }

            return targets;
        }

        var values = NumericValues(head, labels, "class names, class indices or probability rows");
        var shape = CheckedShape(head, labels);
        CheckRows(head, output, shape);
        var rowShape = shape.AsSpan(1);
        if (SameRowShape(rowShape, []))
        {
            // One value per row: a class index.
            CheckFinite(head, values, 1);
            for (var r = 0; r < rows; r++)
            {
                var v = values[r];
                if (v != Math.Floor(v) || v < 0 || v >= k)
                {
                    throw new LabelException(
                        head, $"labels.{head}[{r}] is {Format(v)}, not a class index of head '{head}' (an integer from 0 to {k - 1})");
                }

                targets[(r * k) + (int)v] = 1;
            }

            return targets;
        }

        if (!SameRowShape(rowShape, output.RowShape))
        {
            throw new LabelException(
                head,
                $"head '{head}' takes one class index per row (shape [{rows}]) or one probability per class (shape [{rows}, {k}]); "
                + $"labels have shape {OutputTensor.FormatShape(shape)}");
        }

        CheckFinite(head, values, k);
        for (var r = 0; r < rows; r++)
        {
            double sum = 0;
            for (var c = 0; c < k; c++)
            {
                var q = values[(r * k) + c];
                if (q < 0 || q > 1)
                {
                    throw new LabelException(head, $"labels.{head}[{r}][{c}] is {Format(q)}; a probability row holds values in [0, 1]");
                }

                sum += q;
            }

            // Rounded client-side probabilities are fine; a row that is plainly not a distribution is not.
            if (Math.Abs(sum - 1) > 1e-3)
            {
                throw new LabelException(head, $"labels.{head}[{r}] sums to {Format(sum)}; a probability row must sum to 1");
            }
        }

        Array.Copy(values, targets, targets.Length);
        return targets;
    }

    /// <summary>Checks every value is a probability (binary and multilabel targets).</summary>
    public static void CheckProbabilities(string head, double[] values, int width)
    {
        for (var i = 0; i < values.Length; i++)
        {
            if (values[i] is < 0 or > 1)
            {
                throw new LabelException(head, $"labels.{head}{Position(i, width)} is {Format(values[i])}; head '{head}' takes targets in [0, 1]");
            }
        }
    }

    /// <summary>Row shapes are equal once trailing 1s are dropped from both: [] ≡ [1] ≡ [1, 1], [4] ≡ [4, 1].</summary>
    internal static bool SameRowShape(ReadOnlySpan<long> a, ReadOnlySpan<long> b) =>
        TrimTrailingOnes(a).SequenceEqual(TrimTrailingOnes(b));

    private static ReadOnlySpan<long> TrimTrailingOnes(ReadOnlySpan<long> shape)
    {
        var length = shape.Length;
        while (length > 0 && shape[length - 1] == 1)
        {
            length--;
        }

        return shape[..length];
    }

    private static double[] NumericValues(string head, HeadLabels labels, string expected) =>
        labels.Values ?? throw new LabelException(head, $"head '{head}' takes {expected} as labels, not class names");

    private static long[] CheckedShape(string head, HeadLabels labels)
    {
        var shape = labels.Shape;
        if (shape is null || shape.Length == 0)
        {
            throw new LabelException(head, $"labels.{head} needs a shape whose first dimension is the number of rows");
        }

        long count = 1;
        foreach (var dimension in shape)
        {
            if (dimension < 0)
            {
                throw new LabelException(head, $"labels.{head} has shape {OutputTensor.FormatShape(shape)} with a negative dimension");
            }

            count *= dimension;
        }

        if (count != labels.Values!.Length)
        {
            throw new LabelException(
                head, $"labels.{head} has shape {OutputTensor.FormatShape(shape)}, which needs {count} values, but holds {labels.Values.Length}");
        }

        return shape;
    }

    private static void CheckRows(string head, OutputTensor output, long[] shape)
    {
        if (shape[0] != output.Rows)
        {
            throw new LabelException(head, $"head '{head}' has {output.Rows} output rows but {shape[0]} label rows");
        }

        if (output.Rows == 0)
        {
            throw new LabelException(head, $"head '{head}' has no rows to evaluate");
        }
    }

    private static LabelException WidthMismatch(string head, OutputTensor output, long[] shape)
    {
        long labelWidth = 1;
        for (var i = 1; i < shape.Length; i++)
        {
            labelWidth *= shape[i];
        }

        var expected = OutputTensor.FormatShape(output.Shape);
        return new LabelException(
            head,
            $"each label row of head '{head}' must match its output rows (output shape {expected}, {output.Width} values per row); "
            + $"labels have shape {OutputTensor.FormatShape(shape)}, {labelWidth} values per row");
    }

    private static void CheckFinite(string head, double[] values, int width)
    {
        for (var i = 0; i < values.Length; i++)
        {
            if (!double.IsFinite(values[i]))
            {
                throw new LabelException(head, $"labels.{head}{Position(i, width)} is {Format(values[i])}; labels must be finite numbers");
            }
        }
    }

    private static string Position(int index, int width) =>
        width == 1 ? $"[{index}]" : $"[{index / width}][{index % width}]";

    private static string Format(double value) => HeadMath.Show(value);
}
