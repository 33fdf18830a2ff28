using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx;

/// <summary>
/// The graph being fused: appends one member at a time under its prefix and checks that every value of
/// the result is defined exactly once.
/// </summary>
internal sealed class FusedGraph
{
    private readonly GraphProto graph;
    private readonly FuseOptions options;
    private readonly HashSet<string> shared;
    private readonly HashSet<string> nodeNames = new(StringComparer.Ordinal);
    private readonly HashSet<string> valueInfoNames = new(StringComparer.Ordinal);

    // Which member defines each value, to report collisions by member.
    private readonly Dictionary<string, string> definedBy = new(StringComparer.Ordinal);

    // Initializer content (name cleared) to its fused name, when deduplicating.
    private readonly Dictionary<TensorProto, string> storedTensors = [];

    public FusedGraph(GraphProto graph, FuseOptions options, IEnumerable<string> sharedInputs)
    {
        this.graph = graph;
        this.options = options;
        shared = new HashSet<string>(sharedInputs, StringComparer.Ordinal);
        foreach (var name in shared)
        {
            definedBy[name] = "the shared inputs";
        }
    }

    /// <summary>True once an Identity node in the default domain has been added.</summary>
    public bool UsesDefaultDomain { get; private set; }

    public void Append(string prefix, GraphProto source, List<(ValueInfoProto Output, string Name)> outputs)
    {
        var member = source.Clone();
        string Prefixed(string name) => prefix + options.Separator + name;

        // Member-local value name -> fused name, for names that do not simply get the prefix.
        var renamed = new Dictionary<string, string>(StringComparer.Ordinal);
        string Rename(string name) =>
            renamed.TryGetValue(name, out var fused) ? fused : shared.Contains(name) ? name : Prefixed(name);

        // An output computed by a node is renamed at its source. One that is a graph input, an initializer, or
        // a second output of the same value cannot be, so an Identity node gives it its name.
        var computed = member.Node.SelectMany(node => node.Output).ToHashSet(StringComparer.Ordinal);
        var identities = new List<(string Source, string Name)>();
        foreach (var (output, name) in outputs)
        {
            if (shared.Contains(output.Name))
            {
                if (name != output.Name)
                {
                    identities.Add((output.Name, name));
                }
            }
            else if (!computed.Contains(output.Name) || !renamed.TryAdd(output.Name, name))
            {
                identities.Add((output.Name, name));
            }
        }

        if (options.DeduplicateInitializers || options.DeduplicateComputation)
        {
            Deduplicate(member, renamed, Rename);
        }

        new ValueRenamer(Rename, Prefixed, Prefixed).Apply(member);

        foreach (var node in member.Node)
        {
            AddNode(node, prefix);
        }

        foreach (var (sourceName, name) in identities)
        {
            var node = new NodeProto { OpType = "Identity", Domain = string.Empty, Name = UniqueNodeName(Prefixed($"Identity_{name}")) };
            node.Input.Add(Rename(sourceName));
            node.Output.Add(name);
            AddNode(node, prefix);
            UsesDefaultDomain = true;
        }

        foreach (var tensor in member.Initializer)
        {
            Define(tensor.Name, prefix);
            graph.Initializer.Add(tensor);
        }

        foreach (var tensor in member.SparseInitializer)
        {
            Define(tensor.Values?.Name ?? string.Empty, prefix);
            graph.SparseInitializer.Add(tensor);
        }

        // Inputs backed by an initializer are the member's own (overridable) weights, not shared feeds.
        graph.Input.AddRange(member.Input.Where(input => !shared.Contains(input.Name)));

        foreach (var (output, name) in outputs)
        {
            var fused = output.Clone();
            fused.Name = name;
            graph.Output.Add(fused);
            valueInfoNames.Add(name);
        }

        // Inputs and outputs carry their own types; other value infos are kept once each.
        graph.ValueInfo.AddRange(member.ValueInfo.Where(info => !shared.Contains(info.Name) && valueInfoNames.Add(info.Name)));
        graph.QuantizationAnnotation.AddRange(member.QuantizationAnnotation);
        graph.MetadataProps.AddRange(member.MetadataProps.Select(entry =>
            new StringStringEntryProto { Key = Prefixed(entry.Key), Value = entry.Value }));
    }

    private void Deduplicate(GraphProto member, Dictionary<string, string> renamed, Func<string, string> rename)
    {
        var overridable = member.Input.Select(input => input.Name).ToHashSet(StringComparer.Ordinal);
        var duplicates = new List<TensorProto>();
        foreach (var tensor in member.Initializer.Where(tensor => !overridable.Contains(tensor.Name)))
        {
            var content = tensor.Clone();
            content.ClearName();
            content.ClearDocString();
            if (storedTensors.TryGetValue(content, out var existing) && renamed.TryAdd(tensor.Name, existing))
            {
                duplicates.Add(tensor);
            }
            else
            {
                storedTensors.TryAdd(content, rename(tensor.Name));
            }
        }

        foreach (var tensor in duplicates)
        {
            member.Initializer.Remove(tensor);
        }
    }

    private void AddNode(NodeProto node, string prefix)
    {
        foreach (var output in node.Output.Where(output => output.Length > 0))
        {
            Define(output, prefix);
        }

        if (node.Name.Length > 0)
        {
            nodeNames.Add(node.Name);
        }

        graph.Node.Add(node);
    }

    private string UniqueNodeName(string name)
    {
        var candidate = name;
        for (var i = 1; nodeNames.Contains(candidate); i++)
        {
            candidate = FormattableString.Invariant($"{name}_{i}");
        }

        return candidate;
    }

    private void Define(string name, string prefix)
    {
        if (name.Length > 0 && !definedBy.TryAdd(name, $"member '{prefix}'"))
        {
            throw new OnnxModelException(
                $"The fused graph would define value '{name}' twice: in member '{prefix}' and in {definedBy[name]}. " +
                "Rename the output, or choose another prefix or separator.");
        }
    }
}
