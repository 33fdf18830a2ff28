using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx;

/// <summary>
/// What <see cref="ModelPruning.Prune"/> would keep of a model for any subset of its outputs, without the model: the
/// weight bytes and the graph inputs each output depends on. A few bytes per initializer, where the model is as large as
/// its weights; so a server can decide whether pruning to a subset pays before it reads the graph again.
/// </summary>
/// <remarks>Immutable and thread-safe. Outputs are numbered in the graph's order; at most 64.</remarks>
public sealed class PruningPlan
{
    /// <summary>The most outputs a plan describes (one bit each).</summary>
    public const int MaxOutputs = 64;

    private readonly string[] _outputs;
    private readonly long[] _weightBytes;
    private readonly ulong[] _weightUsers;
    private readonly Dictionary<string, ulong> _inputUsers;

    private PruningPlan(string[] outputs, long[] weightBytes, ulong[] weightUsers, Dictionary<string, ulong> inputUsers)
    {
        _outputs = outputs;
        _weightBytes = weightBytes;
        _weightUsers = weightUsers;
        _inputUsers = inputUsers;
        TotalWeightBytes = weightBytes.Sum();
    }

    /// <summary>The graph's outputs, in order: bit i of a mask is output i.</summary>
    public IReadOnlyList<string> Outputs => _outputs;

    /// <summary>Every initializer's bytes (as <see cref="OnnxModel.InitializerBytes"/> counts them).</summary>
    public long TotalWeightBytes { get; }

    /// <summary>The plan of <paramref name="model"/>, which is not modified or kept.</summary>
    /// <exception cref="OnnxModelException">The model has no graph, or more than <see cref="MaxOutputs"/> outputs.</exception>
    public static PruningPlan Of(ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var graph = model.Graph ?? throw new OnnxModelException("The model has no graph.");
        if (graph.Output.Count > MaxOutputs)
        {
            throw new OnnxModelException($"The model has {graph.Output.Count} outputs; a pruning plan describes at most {MaxOutputs}.");
        }

        var reads = graph.Output.Select(output => ModelPruning.Reachable(graph, [output.Name]).Values).ToList();
        ulong UsersOf(string name)
        {
            ulong users = 0;
            for (var i = 0; i < reads.Count; i++)
            {
                if (reads[i].Contains(name))
                {
                    users |= 1UL << i;
                }
            }

            return users;
        }

        var weights = graph.Initializer.Select(t => (Bytes: TensorPayload.ByteCount(t), Users: UsersOf(t.Name)))
            .Concat(graph.SparseInitializer.Select(t => (Bytes: TensorPayload.ByteCount(t), Users: t.Values is null ? 0 : UsersOf(t.Values.Name))))
            .ToList();
        return new PruningPlan(
            [.. graph.Output.Select(output => output.Name)],
            [.. weights.Select(w => w.Bytes)],
            [.. weights.Select(w => w.Users)],
            graph.Input.ToDictionary(input => input.Name, input => UsersOf(input.Name), StringComparer.Ordinal));
    }

    /// <summary>The outputs' mask (bit i: output i), or null when a name is not an output.</summary>
    public ulong? Mask(IEnumerable<string> outputs)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        ulong mask = 0;
        foreach (var name in outputs)
        {
            var index = Array.IndexOf(_outputs, name);
            if (index < 0)
            {
                return null;
            }

            mask |= 1UL << index;
        }

        return mask;
    }

    /// <summary>The weight bytes the graph pruned to the outputs in <paramref name="mask"/> keeps.</summary>
    public long WeightBytes(ulong mask)
    {
        long kept = 0;
        for (var i = 0; i < _weightBytes.Length; i++)
        {
            if ((_weightUsers[i] & mask) != 0)
            {
                kept += _weightBytes[i];
            }
        }

        return kept;
    }

    /// <summary>Whether the graph pruned to the outputs in <paramref name="mask"/> still reads graph input <paramref name="input"/>.</summary>
    public bool Reads(string input, ulong mask) => _inputUsers.TryGetValue(input, out var users) && (users & mask) != 0;
}
