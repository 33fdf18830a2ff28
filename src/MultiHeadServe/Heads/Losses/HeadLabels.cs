using System.Text.Json;

namespace MultiHeadServe.Heads.Losses;

/// <summary>
/// The ground truth an evaluation request gives for one head: numbers with a shape (first dimension: one
/// row per input row), or class names for a classification head. Nothing is checked here; evaluation checks
/// the labels against the head's output and reports a <see cref="LabelException"/> naming the head.
/// </summary>
public sealed record HeadLabels
{
    private HeadLabels(double[]? values, long[]? shape, string[]? classNames)
    {
        Values = values;
        Shape = shape;
        ClassNames = classNames;
    }

    /// <summary>Row-major numeric labels, or null when the labels are class names.</summary>
    public double[]? Values { get; }

    /// <summary>The shape of <see cref="Values"/>: <c>[N]</c>, <c>[N, k]</c>, ...; null for class names.</summary>
    public long[]? Shape { get; }

    /// <summary>One class name per row (classification heads), or null for numeric labels.</summary>
    public string[]? ClassNames { get; }

    /// <summary>Numeric labels: values in row-major order and their shape.</summary>
    public static HeadLabels Numeric(double[] values, params long[] shape)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(shape);
        return new HeadLabels(values, shape, null);
    }

    /// <summary>Numeric labels of shape <c>[N]</c>: one value per row.</summary>
    public static HeadLabels Column(params double[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return new HeadLabels(values, [values.Length], null);
    }

    /// <summary>One class name per row, mapped through the head's labels file.</summary>
    public static HeadLabels FromClassNames(params string[] names)
    {
        ArgumentNullException.ThrowIfNull(names);
        return new HeadLabels(null, null, names);
    }

    /// <summary>
    /// Reads a head's labels from the request's JSON: an array of numbers (<c>[N]</c>), nested rectangular
    /// arrays of numbers (<c>[N, k]</c>, ...), or an array of strings (class names).
    /// </summary>
    /// <param name="head">The head the labels belong to, for error messages.</param>
    /// <param name="json">The JSON value.</param>
    /// <exception cref="LabelException">The value is not one of those forms.</exception>
    public static HeadLabels FromJson(string head, JsonElement json)
    {
        var path = $"labels.{head}";
        if (json.ValueKind != JsonValueKind.Array)
        {
            throw new LabelException(head, $"{path} must be an array with one entry per input row, not {Describe(json)}");
        }

        if (json.GetArrayLength() > 0 && json[0].ValueKind == JsonValueKind.String)
        {
            var names = new string[json.GetArrayLength()];
            var i = 0;
            foreach (var item in json.EnumerateArray())
            {
                names[i] = item.ValueKind == JsonValueKind.String
                    ? item.GetString()!
                    : throw new LabelException(head, $"{path}[{i}] is {Describe(item)}; an array of class names holds only strings");
                i++;
            }

            return FromClassNames(names);
        }

        // The shape is read down the first elements; every other element must then match it exactly, so a
        // ragged array is reported instead of being flattened into the wrong rows.
        var shape = new List<long>();
        for (var probe = json; probe.ValueKind == JsonValueKind.Array; probe = probe[0])
        {
            shape.Add(probe.GetArrayLength());
            if (probe.GetArrayLength() == 0)
            {
                break;
            }
        }

        // Checked in full before anything is allocated: the shape read down the first elements is only what the
        // client declares (three nested arrays of 1000 claim 10^9 values in a few KB), while a rectangular array
        // really holds every value it counts, so the count of a checked one is bounded by the body's size.
        var count = 0;
        Flatten(head, json, path, shape, 0, values: null, ref count);
        var values = new double[count];
        var written = 0;
        Flatten(head, json, path, shape, 0, values, ref written);
        return Numeric(values, [.. shape]);
    }

    /// <summary>Writes the values in row-major order, or with <paramref name="values"/> null only checks and counts them.</summary>
    private static void Flatten(string head, JsonElement element, string path, List<long> shape, int depth, double[]? values, ref int written)
    {
        if (depth == shape.Count)
        {
            var number = element.ValueKind == JsonValueKind.Number && element.TryGetDouble(out var value) && double.IsFinite(value)
                ? value
                : throw new LabelException(head, $"{path} is {Describe(element)}; expected a finite number");
            if (values is not null)
            {
                values[written] = number;
            }

            written++;
            return;
        }

        if (element.ValueKind != JsonValueKind.Array || element.GetArrayLength() != shape[depth])
        {
            throw new LabelException(
                head, $"{path} is {Describe(element)}; expected an array of {shape[depth]} like the first entry at this depth (labels must be rectangular)");
        }

        var i = 0;
        foreach (var item in element.EnumerateArray())
        {
            Flatten(head, item, $"{path}[{i}]", shape, depth + 1, values, ref written);
            i++;
        }
    }

    private static string Describe(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Array => $"an array of {element.GetArrayLength()}",
        JsonValueKind.Object => "an object",
        JsonValueKind.String => $"the string \"{element.GetString()}\"",
        JsonValueKind.Number => $"the number {element.GetRawText()}",
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        _ => "null",
    };
}
