using MultiHeadServe.Onnx;

namespace MultiHeadServe.Inference.Engine;

/// <summary>
/// A graph input or output as the session reports it: the service's own description (element types as the graph
/// tools name them), so nothing outside <c>Inference/</c> sees the engine's types. <see cref="Shape"/> holds -1 for a dynamic dimension;
/// <see cref="SymbolicDimensions"/> its name (e.g. "batch"), or "" where none was given.
/// </summary>
public sealed record TensorMetadata(
    string Name,
    TensorElementType ElementType,
    IReadOnlyList<long> Shape,
    IReadOnlyList<string> SymbolicDimensions)
{
    /// <summary>True when the first dimension is dynamic, i.e. the model accepts any batch size.</summary>
    public bool HasDynamicBatch => Shape.Count > 0 && Shape[0] < 0;
}
