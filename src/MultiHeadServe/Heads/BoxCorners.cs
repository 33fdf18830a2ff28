namespace MultiHeadServe.Heads;

/// <summary>A box as corners (x1, y1, x2, y2) in double, converted from any manifest box format.</summary>
internal readonly record struct BoxCorners(double X1, double Y1, double X2, double Y2)
{
    /// <summary>Reads four values laid out as <paramref name="format"/> (xyxy, xywh or cxcywh).</summary>
    public static BoxCorners From(ReadOnlySpan<double> v, BoxFormat format) => format switch
    {
        BoxFormat.Xywh => new(v[0], v[1], v[0] + v[2], v[1] + v[3]),
        BoxFormat.Cxcywh => new(v[0] - (v[2] / 2), v[1] - (v[3] / 2), v[0] + (v[2] / 2), v[1] + (v[3] / 2)),
        _ => new(v[0], v[1], v[2], v[3]),
    };

    /// <inheritdoc cref="From(ReadOnlySpan{double}, BoxFormat)"/>
    public static BoxCorners From(ReadOnlySpan<float> v, BoxFormat format)
    {
        Span<double> widened = stackalloc double[] { v[0], v[1], v[2], v[3] };
        return From(widened, format);
    }

    /// <summary>The same box with min &lt;= max on both axes: a model that swaps corners still describes a box.</summary>
    public BoxCorners Sorted() => new(Math.Min(X1, X2), Math.Min(Y1, Y2), Math.Max(X1, X2), Math.Max(Y1, Y2));

    public double Area => (X2 - X1) * (Y2 - Y1);

    /// <summary>
    /// Intersection over union of two sorted boxes. Two boxes with no area between them have no meaningful
    /// ratio: identical ones count as a perfect match (1), others as none (0), so the result is never NaN.
    /// </summary>
    public static double Iou(BoxCorners a, BoxCorners b)
    {
        var (intersection, union) = Overlap(a, b);
        return union > 0 ? intersection / union : (a == b ? 1.0 : 0.0);
    }

    /// <summary>
    /// Generalised IoU (Rezatofighi et al., 2019) of two sorted boxes: IoU minus the share of the smallest
    /// enclosing box that neither covers. Enclosing boxes without area add no penalty.
    /// </summary>
    public static double GeneralizedIou(BoxCorners a, BoxCorners b)
    {
        var (_, union) = Overlap(a, b);
        var iou = Iou(a, b);
        var enclosing = (Math.Max(a.X2, b.X2) - Math.Min(a.X1, b.X1)) * (Math.Max(a.Y2, b.Y2) - Math.Min(a.Y1, b.Y1));
        return enclosing > 0 ? iou - ((enclosing - union) / enclosing) : iou;
    }

    private static (double Intersection, double Union) Overlap(BoxCorners a, BoxCorners b)
    {
        var width = Math.Max(0, Math.Min(a.X2, b.X2) - Math.Max(a.X1, b.X1));
        var height = Math.Max(0, Math.Min(a.Y2, b.Y2) - Math.Max(a.Y1, b.Y1));
        var intersection = width * height;
        return (intersection, a.Area + b.Area - intersection);
    }
}
