using MultiHeadServe.Onnx;
using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Inference;

/// <summary>
/// Where <see cref="HeadSubsetSessions"/> gets the graph its full session was made from, to prune it for a subset of
/// outputs. The graph is read when needed and not kept (it is as large as the model's weights).
/// </summary>
/// <param name="Read">Reads the graph; throws when it is no longer available as the session was made from it.</param>
/// <param name="Plan">What pruning keeps for each subset, when the caller had the graph in hand (else made from the first read).</param>
/// <param name="AfterRead">Called once a graph read has been used and dropped: it left garbage as large as the model.</param>
public sealed record PrunableGraph(Func<ModelProto> Read, PruningPlan? Plan = null, Action? AfterRead = null);
