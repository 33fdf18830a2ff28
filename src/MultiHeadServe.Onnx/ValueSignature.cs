namespace MultiHeadServe.Onnx;

/// <summary>A graph input or output as a caller sees it.</summary>
/// <param name="Name">The value name, the key callers feed or fetch.</param>
/// <param name="Type">
/// The full type: <c>tensor(float32)</c>, <c>seq(tensor(int64))</c>, <c>map(string,tensor(float32))</c>,
/// <c>optional(...)</c>, <c>sparse_tensor(...)</c>.
/// </param>
/// <param name="ElementType">The element type of a (sparse) tensor; <see cref="TensorElementType.Undefined"/> otherwise.</param>
/// <param name="Shape">The declared dimensions of a (sparse) tensor, or null when the rank is unknown or the value is not a tensor.</param>
public sealed record ValueSignature(
    string Name,
    string Type,
    TensorElementType ElementType,
    IReadOnlyList<TensorDimension>? Shape)
{
    /// <summary>The shape as <c>[batch, 10]</c>, or <c>?</c> when the rank is unknown.</summary>
    public string ShapeText => Shape is null ? "?" : "[" + string.Join(", ", Shape) + "]";
}
