using System.Globalization;
using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx;

/// <summary>
/// Joins a backbone and a head into one model, the head reading values the backbone computes: the
/// deployable model a team ships when it trains a head on a pretrained backbone.
/// </summary>
/// <remarks>
/// Thread-safety: <see cref="Compose"/> is a pure function; it reads its arguments and returns a new model
/// that shares nothing mutable with them.
/// </remarks>
public static class ModelComposition
{
    /// <summary>The metadata key recording the composition, <c>backbone=&lt;graph&gt;;head=&lt;graph&gt;;map=a:b,...</c>.</summary>
    public const string ComposedMetadataKey = "multiheadserve.composed";

    /// <summary>Composes <paramref name="backbone"/> and <paramref name="head"/>.</summary>
    /// <param name="backbone">The model whose values feed the head; not modified.</param>
    /// <param name="head">The model that reads them; not modified.</param>
    /// <param name="options">The connections and prefixes; <see cref="ComposeOptions.Default"/> when null.</param>
    /// <returns>
    /// <para>A new model, owned by the caller, whose graph:</para>
    /// <list type="bullet">
    /// <item>takes the backbone's fed inputs, then the head's inputs the map leaves unconnected;</item>
    /// <item>returns the backbone's outputs <see cref="ComposeOptions.BackboneOutputs"/> asks for (by default those
    /// the head does not read), then the head's outputs; with <see cref="BackboneOutputs.None"/> the nodes only
    /// dropped outputs needed are removed too;</item>
    /// <item>holds the backbone's nodes, then the head's, every mapped head input renamed to the backbone value;</item>
    /// <item>imports the union of the operator sets; when the two import different versions of the default set,
    /// the older model is upgraded if every operator it uses means the same at the newer version, otherwise
    /// composition is refused. <c>ir_version</c> is the higher of the two.</item>
    /// </list>
    /// </returns>
    /// <exception cref="OnnxModelException">
    /// A mapped name does not exist, the types of a connection disagree, the two graphs use a name for
    /// different things (choose prefixes), or the operator sets cannot be reconciled.
    /// </exception>
    public static ModelProto Compose(ModelProto backbone, ModelProto head, ComposeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        ArgumentNullException.ThrowIfNull(head);
        options ??= ComposeOptions.Default;
        if (backbone.Graph is null || head.Graph is null)
        {
            throw new OnnxModelException("Both the backbone and the head need a graph.");
        }

        (backbone, head) = ReconcileOpsets(backbone, head);
        var map = Map(backbone.Graph, head.Graph, options);
        var first = Prefixed(backbone.Graph, options.BackbonePrefix, new Dictionary<string, string>(StringComparer.Ordinal));
        var backboneInterface = SharedInputs.Feeds(backbone.Graph).Select(input => input.Name)
            .Concat(backbone.Graph.Output.Select(output => output.Name)).ToHashSet(StringComparer.Ordinal);
        var headRenames = map.ToDictionary(
            pair => pair.Head,
            pair => backboneInterface.Contains(pair.Backbone) ? pair.Backbone : (options.BackbonePrefix ?? string.Empty) + pair.Backbone,
            StringComparer.Ordinal);
        var second = Prefixed(head.Graph, options.HeadPrefix, headRenames);
        CheckNames(first, second, headRenames.Values.ToHashSet(StringComparer.Ordinal));

        var mappedBackboneValues = headRenames.Values.ToHashSet(StringComparer.Ordinal);
        var graph = new GraphProto
        {
            Name = $"{backbone.Graph.Name}+{head.Graph.Name}",
            DocString = $"Composed by {ModelFusion.ProducerName}: backbone '{backbone.Graph.Name}', head '{head.Graph.Name}'.",
        };
        graph.Input.AddRange(first.Input);
        graph.Input.AddRange(second.Input.Where(input => !mappedBackboneValues.Contains(input.Name)));
        graph.Output.AddRange(first.Output.Where(output => options.BackboneOutputs switch
        {
            BackboneOutputs.All => true,
            BackboneOutputs.None => false,
            _ => !mappedBackboneValues.Contains(output.Name),
        }));
        graph.Output.AddRange(second.Output);
        graph.Node.AddRange(first.Node);
        graph.Node.AddRange(second.Node);
        graph.Initializer.AddRange(first.Initializer);
        graph.Initializer.AddRange(second.Initializer);
        graph.SparseInitializer.AddRange(first.SparseInitializer);
        graph.SparseInitializer.AddRange(second.SparseInitializer);

        // The backbone's outputs that are no longer outputs keep their types as value infos.
        var valueInfos = first.ValueInfo.Concat(first.Output.Where(output => !graph.Output.Contains(output))).Concat(second.ValueInfo);
        var described = graph.Input.Concat(graph.Output).Select(value => value.Name).ToHashSet(StringComparer.Ordinal);
        graph.ValueInfo.AddRange(valueInfos.Where(info => described.Add(info.Name)));
        graph.QuantizationAnnotation.AddRange(first.QuantizationAnnotation);
        graph.QuantizationAnnotation.AddRange(second.QuantizationAnnotation);

        var model = new ModelProto
        {
            IrVersion = Math.Max(backbone.IrVersion, head.IrVersion),
            ProducerName = ModelFusion.ProducerName,
            ProducerVersion = OnnxModel.LibraryVersion,
            DocString = graph.DocString,
            Graph = graph,
        };
        model.OpsetImport.AddRange(MergeOpsets(backbone, head));
        model.Functions.AddRange(backbone.Functions.Select(function => function.Clone()));
        foreach (var function in head.Functions)
        {
            var same = backbone.Functions.FirstOrDefault(existing =>
                existing.Name == function.Name && OnnxDomains.Normalize(existing.Domain) == OnnxDomains.Normalize(function.Domain) &&
                existing.Overload == function.Overload);
            if (same is null)
            {
                model.Functions.Add(function.Clone());
            }
            else if (!same.Equals(function))
            {
                throw new OnnxModelException($"The backbone and the head both define local function '{function.Domain}.{function.Name}' with different bodies.");
            }
        }

        model.MetadataProps.AddRange(backbone.MetadataProps.Select(entry => entry.Clone()));
        var keys = model.MetadataProps.Select(entry => entry.Key).ToHashSet(StringComparer.Ordinal);
        model.MetadataProps.AddRange(head.MetadataProps.Where(entry => !keys.Contains(entry.Key)).Select(entry => entry.Clone()));
        model.MetadataProps.Add(new StringStringEntryProto
        {
            Key = ComposedMetadataKey,
            Value = string.Create(CultureInfo.InvariantCulture,
                $"backbone={backbone.Graph.Name};head={head.Graph.Name};map={string.Join(',', map.Select(pair => $"{pair.Backbone}:{pair.Head}"))}"),
        });
        return options.BackboneOutputs == BackboneOutputs.None
            ? ModelPruning.Prune(model, graph.Output.Select(output => output.Name).ToList())
            : model;
    }

    private static (ModelProto Backbone, ModelProto Head) ReconcileOpsets(ModelProto backbone, ModelProto head)
    {
        var (mine, theirs) = (OpsetUpgrade.DefaultVersion(backbone), OpsetUpgrade.DefaultVersion(head));
        if (mine is null || theirs is null || mine == theirs)
        {
            return (backbone, head);
        }

        return mine < theirs
            ? (OpsetUpgrade.Upgrade(backbone, theirs.Value, $"The backbone (operator set ai.onnx {mine}, the head {theirs})"), head)
            : (backbone, OpsetUpgrade.Upgrade(head, mine.Value, $"The head (operator set ai.onnx {theirs}, the backbone {mine})"));
    }

    private static List<(string Backbone, string Head)> Map(GraphProto backbone, GraphProto head, ComposeOptions options)
    {
        var feeds = SharedInputs.Feeds(head).ToList();
        var map = options.Map.ToList();
        if (map.Count == 0)
        {
            if (backbone.Output.Count != 1 || feeds.Count != 1)
            {
                throw new OnnxModelException(
                    $"The backbone has {backbone.Output.Count} outputs and the head {feeds.Count} inputs; say which feeds which " +
                    "(ComposeOptions.Map; mhs compose --map <backbone value>=<head input>).");
            }

            map.Add((backbone.Output[0].Name, feeds[0].Name));
        }

        var computed = backbone.Node.SelectMany(node => node.Output).Concat(backbone.Input.Select(input => input.Name))
            .Where(name => name.Length > 0).ToHashSet(StringComparer.Ordinal);
        var heads = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (from, to) in map)
        {
            if (!computed.Contains(from))
            {
                throw new OnnxModelException(
                    $"The backbone has no value '{from}'. Its outputs are: {string.Join(", ", backbone.Output.Select(output => output.Name))}.");
            }

            var input = feeds.FirstOrDefault(feed => feed.Name == to) ?? throw new OnnxModelException(
                $"The head has no input '{to}'. Its inputs are: {string.Join(", ", feeds.Select(feed => feed.Name))}.");
            if (!heads.Add(to))
            {
                throw new OnnxModelException($"Head input '{to}' is mapped twice.");
            }

            var source = backbone.Output.Concat(backbone.ValueInfo).Concat(backbone.Input).FirstOrDefault(value => value.Name == from);
            CheckTypes(source, input);
        }

        return map;
    }

    private static void CheckTypes(ValueInfoProto? source, ValueInfoProto input)
    {
        if (source?.Type?.TensorType is not { } left || input.Type?.TensorType is not { } right)
        {
            return;
        }

        if (left.ElemType != right.ElemType)
        {
            throw new OnnxModelException(
                $"Backbone value '{source.Name}' is {ValueSignatures.Describe(source.Type)} but head input '{input.Name}' is {ValueSignatures.Describe(input.Type)}.");
        }

        if (left.Shape is null || right.Shape is null)
        {
            return;
        }

        var (from, to) = (ValueSignatures.From(source), ValueSignatures.From(input));
        var compatible = left.Shape.Dim.Count == right.Shape.Dim.Count && from.Shape!.Zip(to.Shape!).All(pair =>
            !pair.First.IsFixed || !pair.Second.IsFixed || pair.First.Value == pair.Second.Value);
        if (!compatible)
        {
            throw new OnnxModelException(
                $"Backbone value '{source.Name}' has shape {from.ShapeText} but head input '{input.Name}' expects {to.ShapeText}.");
        }
    }

    /// <summary>A copy of the graph with its internal names prefixed and some values renamed outright.</summary>
    private static GraphProto Prefixed(GraphProto source, string? prefix, Dictionary<string, string> renames)
    {
        var graph = source.Clone();
        var interfaceNames = SharedInputs.Feeds(graph).Select(input => input.Name).Concat(graph.Output.Select(output => output.Name))
            .ToHashSet(StringComparer.Ordinal);
        string Name(string name) => string.IsNullOrEmpty(prefix) ? name : prefix + name;
        string Value(string name) => renames.TryGetValue(name, out var renamed) ? renamed : interfaceNames.Contains(name) ? name : Name(name);
        new ValueRenamer(Value, Name, Name).Apply(graph);
        return graph;
    }

    private static void CheckNames(GraphProto backbone, GraphProto head, HashSet<string> connections)
    {
        var backboneNames = GraphScope.DefinedNames(backbone);
        var clash = GraphScope.DefinedNames(head).Where(name => !connections.Contains(name) && backboneNames.Contains(name)).ToList();
        var nodeNames = backbone.Node.Select(node => node.Name).Where(name => name.Length > 0).ToHashSet(StringComparer.Ordinal);
        clash.AddRange(head.Node.Select(node => node.Name).Where(name => name.Length > 0 && nodeNames.Contains(name)));
        if (clash.Count > 0)
        {
            throw new OnnxModelException(
                $"The backbone and the head both use the names {string.Join(", ", clash.Distinct(StringComparer.Ordinal).Take(5).Select(name => $"'{name}'"))}" +
                $"{(clash.Count > 5 ? ", ..." : string.Empty)}. Give one of them a prefix (ComposeOptions.HeadPrefix; mhs compose --head-prefix).");
        }
    }

    private static IEnumerable<OperatorSetIdProto> MergeOpsets(ModelProto backbone, ModelProto head)
    {
        var merged = new Dictionary<string, long>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (var opset in backbone.OpsetImport.Concat(head.OpsetImport))
        {
            var domain = OnnxDomains.Normalize(opset.Domain);
            if (!merged.TryGetValue(domain, out var existing))
            {
                merged[domain] = opset.Version;
                order.Add(domain);
            }
            else if (existing != opset.Version)
            {
                if (domain.Length == 0)
                {
                    throw new InvalidOperationException("The default operator set was reconciled before merging.");
                }

                throw new OnnxModelException(
                    $"The backbone and the head import different versions of operator set '{domain}' ({existing} and {opset.Version}).");
            }
        }

        return order.Select(domain => new OperatorSetIdProto { Domain = domain, Version = merged[domain] });
    }
}
