namespace MultiHeadServe.Onnx;

/// <summary>
/// One dimension of a declared tensor shape: a fixed size, a symbolic name such as <c>batch</c> (the
/// same name means the same size everywhere in the graph), or neither when the size is unknown.
/// </summary>
/// <param name="Value">The fixed size, or null.</param>
/// <param name="Symbol">The symbolic name, or null.</param>
public readonly record struct TensorDimension(long? Value, string? Symbol)
{
    /// <summary>True when the size is fixed.</summary>
    public bool IsFixed => Value is not null;

    /// <summary>The size, the symbol, or <c>?</c>.</summary>
    public override string ToString() =>
        Value is { } value ? value.ToString(System.Globalization.CultureInfo.InvariantCulture) : Symbol ?? "?";
}
