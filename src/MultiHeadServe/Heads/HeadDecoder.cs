using System.Globalization;
using MultiHeadServe.Models;

namespace MultiHeadServe.Heads;

/// <summary>
/// Turns one row of a head's output tensor into that head's <see cref="HeadResult"/>. Built once per head
/// when a model loads, from its <see cref="HeadSpec"/> and labels; every manifest mistake is reported
/// then, as a <see cref="HeadSpecException"/>, not on the first request. Immutable and thread-safe: one
/// instance serves every concurrent request of the model version.
/// </summary>
public abstract class HeadDecoder
{
    private protected HeadDecoder(HeadSpec spec, int? width)
    {
        HeadName = spec.Name;
        OutputName = spec.Output;
        Kind = spec.Kind;
        Width = width;
    }

    /// <summary>The head's name, the key of its result in the combined response.</summary>
    public string HeadName { get; }

    /// <summary>The ONNX output the head reads.</summary>
    public string OutputName { get; }

    /// <summary>The head's kind, as in the manifest.</summary>
    public HeadKind Kind { get; }

    /// <summary>Values per output row the head requires, when the manifest or the session fixes it.</summary>
    public int? Width { get; }

    /// <summary>Compiles the decoder for one head.</summary>
    /// <param name="spec">The head's manifest entry.</param>
    /// <param name="labels">The lines of the head's labels file; classification and multilabel heads only.</param>
    /// <param name="outputWidth">
    /// Values per row of the head's output as the session reports it (the product of the dimensions after
    /// the batch), or null when a dimension is dynamic; checked against what the head needs.
    /// </param>
    /// <exception cref="HeadSpecException">The head cannot be decoded as its manifest entry says.</exception>
    public static HeadDecoder Create(HeadSpec spec, IReadOnlyList<string>? labels = null, int? outputWidth = null)
    {
        var rule = HeadSpecRules.Check(spec);
        if (labels is not null && !rule.Takes(HeadOptions.Labels))
        {
            throw new HeadSpecException(
                spec.Name, "labels", $"labels apply to {HeadSpecRules.KindsTaking(HeadOptions.Labels)} heads, not to a {spec.Kind.ManifestName()} head");
        }

        if (outputWidth is <= 0)
        {
            throw new HeadSpecException(spec.Name, "output", $"output '{spec.Output}' has {outputWidth} values per row");
        }

        return rule.Decoder(spec, labels, outputWidth);
    }

    /// <summary>Decodes one request's row of the head's output.</summary>
    /// <param name="row">The head's output values for one request (<see cref="OutputTensor.Row"/>).</param>
    /// <param name="context">What the decoder may need to know about the request.</param>
    /// <exception cref="HeadOutputException">
    /// The row holds NaN or Infinity, has the wrong number of values, or decodes to a value out of range.
    /// </exception>
    public HeadResult Decode(ReadOnlySpan<float> row, DecodeContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (row.IsEmpty || (Width is { } width && row.Length != width))
        {
            throw new HeadOutputException(
                HeadName, $"output '{OutputName}' has {row.Length} values per row; the head needs {Width?.ToString(CultureInfo.InvariantCulture) ?? "at least 1"}");
        }

        var bad = HeadMath.FirstNonFinite(row);
        if (bad >= 0)
        {
            throw new HeadOutputException(HeadName, $"output '{OutputName}' holds {HeadMath.Show(row[bad])} at column {bad}");
        }

        return DecodeRow(row, context);
    }

    /// <summary>Decodes a row already checked to be finite and of the right width.</summary>
    private protected abstract HeadResult DecodeRow(ReadOnlySpan<float> row, DecodeContext context);

    /// <summary>Checks a width fixed by the manifest (labels, box) against the session's, and returns the one to enforce.</summary>
    private protected static int? RequireWidth(HeadSpec spec, int required, int? outputWidth, string field, string why)
    {
        if (outputWidth is { } actual && actual != required)
        {
            throw new HeadSpecException(spec.Name, field, $"{why}, but output '{spec.Output}' has {actual} values per row");
        }

        return required;
    }

    /// <summary>A float for the response, or a <see cref="HeadOutputException"/> when the value left float range.</summary>
    private protected float Finite(double value, string what)
    {
        var single = (float)value;
        return float.IsFinite(single)
            ? single
            : throw new HeadOutputException(HeadName, $"{what} is {HeadMath.Show(value)}, outside the range a response can carry");
    }
}
