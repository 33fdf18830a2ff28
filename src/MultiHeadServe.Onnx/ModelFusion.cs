using System.Globalization;
using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx;

/// <summary>
/// Fuses several models over the same inputs into one graph, so that one run computes every member's
/// outputs from one fed tensor.
/// </summary>
/// <remarks>
/// Thread-safety: <see cref="Fuse"/> is a pure function. It reads the members without changing them and
/// returns a new model that shares nothing mutable with them; members must not be edited during the call.
/// </remarks>
public static class ModelFusion
{
    /// <summary>The <c>producer_name</c> of fused models.</summary>
    public const string ProducerName = "MultiHeadServe";

    /// <summary>The metadata key listing the members' prefixes, comma-separated, in fusion order.</summary>
    public const string MembersMetadataKey = "multiheadserve.members";

    /// <summary>Metadata key: the separator between a member's prefix and its names (pruning reads it to drop a member's entries).</summary>
    public const string SeparatorMetadataKey = "multiheadserve.separator";

    /// <summary>
    /// Fuses the members into one model.
    /// </summary>
    /// <param name="members">
    /// The models, each with a prefix that names it in the fused graph and in error messages (for example
    /// its file name without extension). Prefixes must be unique and must not contain the separator.
    /// </param>
    /// <param name="options">How to combine them; <see cref="FuseOptions.Default"/> when null.</param>
    /// <returns>
    /// <para>A new model, owned by the caller, in which:</para>
    /// <list type="bullet">
    /// <item>the shared graph inputs keep their names and feed every member;</item>
    /// <item>every member output keeps its name (or the one <see cref="FuseOptions.OutputNames"/> gives it), in
    /// member order;</item>
    /// <item>every other name of member <c>p</c> (nodes, values, initializers, sparse initializers, value
    /// infos, quantization annotations, subgraphs of If/Loop/Scan at any depth) becomes <c>p/name</c>;</item>
    /// <item>a member importing an older version of the default operator set than another is first upgraded to
    /// it, when every operator it uses keeps its meaning (BatchNormalization's <c>spatial</c> dropped, Split's and
    /// Squeeze's attributes turned into inputs);</item>
    /// <item>with <see cref="FuseOptions.DeduplicateComputation"/>, identical nodes are computed once;</item>
    /// <item>opset imports are merged, <c>ir_version</c> is the highest of the members', the producer is
    /// <see cref="ProducerName"/>, and the metadata records each member's provenance under
    /// <c>multiheadserve.member.&lt;prefix&gt;.*</c> plus the member's own entries as <c>&lt;prefix&gt;/&lt;key&gt;</c>.</item>
    /// </list>
    /// <para>Training information is not carried over: the fused model is for inference.</para>
    /// </returns>
    /// <exception cref="OnnxModelException">
    /// The members cannot be fused: their inputs differ, two outputs would share a name, opset versions
    /// disagree and the older member cannot be upgraded, or two members define the same local function
    /// differently. The message names the members.
    /// </exception>
    public static ModelProto Fuse(IReadOnlyList<(string Prefix, ModelProto Model)> members, FuseOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(members);
        options ??= FuseOptions.Default;
        CheckMembers(members, options);
        var originals = members;
        members = ReconcileOpsets(members, options);

        var inputs = SharedInputs.Merge(members);
        var outputs = OutputNames(members, options);
        var graph = new GraphProto
        {
            Name = options.GraphName ?? string.Join('+', members.Select(member => member.Prefix)),
            DocString = $"Fused by {ProducerName} from {string.Join(", ", members.Select(member => member.Prefix))}.",
        };
        graph.Input.AddRange(inputs);

        var fusion = new FusedGraph(graph, options, inputs.Select(input => input.Name));
        for (var i = 0; i < members.Count; i++)
        {
            fusion.Append(members[i].Prefix, members[i].Model.Graph, outputs[i]);
        }

        if (options.DeduplicateComputation)
        {
            CommonSubexpressions.Eliminate(graph);
        }

        var model = new ModelProto
        {
            IrVersion = members.Max(member => member.Model.IrVersion),
            ProducerName = ProducerName,
            ProducerVersion = OnnxModel.LibraryVersion,
            DocString = graph.DocString,
            Graph = graph,
        };
        // Renames and deduplicated graph outputs add Identity nodes, which need the default operator set.
        var usesDefaultDomain = fusion.UsesDefaultDomain ||
                                graph.Node.Any(node => node.OpType == "Identity" && OnnxDomains.Normalize(node.Domain).Length == 0);
        model.OpsetImport.AddRange(MergeOpsets(members, options, usesDefaultDomain));
        model.Functions.AddRange(MergeFunctions(members));
        model.Configuration.AddRange(MergeConfigurations(members));
        model.MetadataProps.AddRange(Provenance(originals, outputs, options));
        return model;
    }

    /// <summary>
    /// The members with the default operator set at one version: those importing an older version are
    /// upgraded when every operator they use keeps its meaning, otherwise fusion is refused.
    /// </summary>
    private static IReadOnlyList<(string Prefix, ModelProto Model)> ReconcileOpsets(
        IReadOnlyList<(string Prefix, ModelProto Model)> members, FuseOptions options)
    {
        var versions = members.Select(member => OpsetUpgrade.DefaultVersion(member.Model)).ToList();
        var highest = versions.Max();
        if (options.AllowOpsetVersionMismatch || highest is null || versions.All(version => version is null || version == highest))
        {
            return members;
        }

        var newest = members[versions.IndexOf(highest)].Prefix;
        var result = new List<(string Prefix, ModelProto Model)>(members.Count);
        for (var i = 0; i < members.Count; i++)
        {
            var (prefix, model) = members[i];
            if (versions[i] is not { } version || version == highest)
            {
                result.Add(members[i]);
                continue;
            }

            if (OpsetUpgrade.Obstacle(model, version, highest.Value) is { } reason)
            {
                throw new OnnxModelException(
                    $"Members '{prefix}' and '{newest}' import different versions of operator set '{OnnxDomains.Default}' " +
                    $"({version} and {highest}), and '{prefix}' cannot be upgraded: {reason} Export them at one version, or allow " +
                    "the highest (FuseOptions.AllowOpsetVersionMismatch; mhs fuse --allow-opset-mismatch) if you know the " +
                    "operators did not change between the versions.");
            }

            result.Add((prefix, OpsetUpgrade.Upgrade(model, highest.Value, $"Member '{prefix}'")));
        }

        return result;
    }

    private static void CheckMembers(IReadOnlyList<(string Prefix, ModelProto Model)> members, FuseOptions options)
    {
        if (members.Count == 0)
        {
            throw new ArgumentException("Fusion needs at least one member.", nameof(members));
        }

        if (string.IsNullOrEmpty(options.Separator))
        {
            throw new ArgumentException("FuseOptions.Separator must not be empty.", nameof(options));
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (prefix, model) in members)
        {
            if (string.IsNullOrWhiteSpace(prefix))
            {
                throw new ArgumentException("Every fusion member needs a non-empty prefix.", nameof(members));
            }

            if (prefix.Contains(options.Separator, StringComparison.Ordinal))
            {
                throw new ArgumentException(
                    $"Member prefix '{prefix}' contains the separator '{options.Separator}'; choose a prefix without it.",
                    nameof(members));
            }

            if (!seen.Add(prefix))
            {
                throw new ArgumentException($"Two members have the prefix '{prefix}'; prefixes must be unique.", nameof(members));
            }

            if (model?.Graph is null)
            {
                throw new OnnxModelException($"Member '{prefix}' has no graph.");
            }
        }
    }

    /// <summary>For each member, its outputs with their names in the fused graph.</summary>
    private static List<List<(ValueInfoProto Output, string Name)>> OutputNames(
        IReadOnlyList<(string Prefix, ModelProto Model)> members, FuseOptions options)
    {
        foreach (var (key, name) in options.OutputNames)
        {
            var member = members.FirstOrDefault(member => member.Prefix == key.Member).Model;
            if (member is null || member.Graph.Output.All(output => output.Name != key.Output))
            {
                throw new OnnxModelException(
                    $"FuseOptions.OutputNames renames output '{key.Output}' of member '{key.Member}', but there is no such member output.");
            }

            if (string.IsNullOrEmpty(name))
            {
                throw new OnnxModelException($"FuseOptions.OutputNames gives output '{key.Output}' of member '{key.Member}' an empty name.");
            }
        }

        var owners = new Dictionary<string, string>(StringComparer.Ordinal);
        var result = new List<List<(ValueInfoProto, string)>>();
        foreach (var (prefix, model) in members)
        {
            var named = new List<(ValueInfoProto, string)>();
            foreach (var output in model.Graph.Output)
            {
                var name = options.OutputNames.GetValueOrDefault(new MemberOutput(prefix, output.Name), output.Name);
                if (!owners.TryAdd(name, prefix))
                {
                    throw new OnnxModelException(owners[name] == prefix
                        ? $"Member '{prefix}' has two outputs named '{name}'."
                        : $"Output '{name}' is produced by member '{owners[name]}' and by member '{prefix}'. " +
                          "Rename one of them (FuseOptions.OutputNames; mhs fuse --rename).");
                }

                named.Add((output, name));
            }

            result.Add(named);
        }

        return result;
    }

    private static IEnumerable<OperatorSetIdProto> MergeOpsets(
        IReadOnlyList<(string Prefix, ModelProto Model)> members, FuseOptions options, bool usesDefaultDomain)
    {
        var merged = new Dictionary<string, (long Version, string Prefix)>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (var (prefix, model) in members)
        {
            foreach (var opset in model.OpsetImport)
            {
                var domain = OnnxDomains.Normalize(opset.Domain);
                if (!merged.TryGetValue(domain, out var existing))
                {
                    merged[domain] = (opset.Version, prefix);
                    order.Add(domain);
                }
                else if (existing.Version != opset.Version)
                {
                    if (!options.AllowOpsetVersionMismatch)
                    {
                        var shown = domain.Length == 0 ? OnnxDomains.Default : domain;
                        throw new OnnxModelException(
                            $"Members '{existing.Prefix}' and '{prefix}' import different versions of operator set '{shown}' " +
                            $"({existing.Version} and {opset.Version}). Export them at one version, or allow the highest " +
                            "(FuseOptions.AllowOpsetVersionMismatch; mhs fuse --allow-opset-mismatch) if the operators they use did not " +
                            "change between the versions.");
                    }

                    if (opset.Version > existing.Version)
                    {
                        merged[domain] = (opset.Version, prefix);
                    }
                }
            }
        }

        // Output renames may add Identity nodes, which need the default operator set; version 1 has Identity.
        if (usesDefaultDomain && !merged.ContainsKey(string.Empty))
        {
            merged[string.Empty] = (1, string.Empty);
            order.Add(string.Empty);
        }

        return order.Select(domain => new OperatorSetIdProto { Domain = domain, Version = merged[domain].Version });
    }

    private static IEnumerable<FunctionProto> MergeFunctions(IReadOnlyList<(string Prefix, ModelProto Model)> members)
    {
        // Function bodies have their own scope, so they need no prefix; two members may share one if identical.
        var merged = new Dictionary<(string, string, string), (FunctionProto Function, string Prefix)>();
        foreach (var (prefix, model) in members)
        {
            foreach (var function in model.Functions)
            {
                var key = (OnnxDomains.Normalize(function.Domain), function.Name, function.Overload);
                if (!merged.TryGetValue(key, out var existing))
                {
                    merged[key] = (function, prefix);
                    yield return function.Clone();
                }
                else if (!existing.Function.Equals(function))
                {
                    throw new OnnxModelException(
                        $"Members '{existing.Prefix}' and '{prefix}' both define local function '{function.Domain}.{function.Name}' " +
                        "with different bodies.");
                }
            }
        }
    }

    private static IEnumerable<DeviceConfigurationProto> MergeConfigurations(IReadOnlyList<(string Prefix, ModelProto Model)> members)
    {
        var merged = new Dictionary<string, (DeviceConfigurationProto Configuration, string Prefix)>(StringComparer.Ordinal);
        foreach (var (prefix, model) in members)
        {
            foreach (var configuration in model.Configuration)
            {
                if (!merged.TryGetValue(configuration.Name, out var existing))
                {
                    merged[configuration.Name] = (configuration, prefix);
                    yield return configuration.Clone();
                }
                else if (!existing.Configuration.Equals(configuration))
                {
                    throw new OnnxModelException(
                        $"Members '{existing.Prefix}' and '{prefix}' both define device configuration '{configuration.Name}' differently.");
                }
            }
        }
    }

    private static IEnumerable<StringStringEntryProto> Provenance(
        IReadOnlyList<(string Prefix, ModelProto Model)> members,
        List<List<(ValueInfoProto Output, string Name)>> outputs,
        FuseOptions options)
    {
        yield return Entry(MembersMetadataKey, string.Join(',', members.Select(member => member.Prefix)));
        yield return Entry(SeparatorMetadataKey, options.Separator);
        for (var i = 0; i < members.Count; i++)
        {
            var (prefix, model) = members[i];
            var key = $"multiheadserve.member.{prefix}.";
            var producer = $"{model.ProducerName} {model.ProducerVersion}".Trim();
            if (producer.Length > 0)
            {
                yield return Entry(key + "producer", producer);
            }

            yield return Entry(key + "ir_version", model.IrVersion.ToString(CultureInfo.InvariantCulture));
            yield return Entry(key + "opsets", string.Join(',', model.OpsetImport.Select(opset =>
                FormattableString.Invariant($"{new OpsetImport(opset.Domain, opset.Version).DisplayDomain}:{opset.Version}"))));
            yield return Entry(key + "outputs", string.Join(',', outputs[i].Select(output =>
                output.Output.Name == output.Name ? output.Name : $"{output.Output.Name}={output.Name}")));
            foreach (var entry in model.MetadataProps)
            {
                yield return Entry(prefix + options.Separator + entry.Key, entry.Value);
            }
        }
    }

    private static StringStringEntryProto Entry(string key, string value) => new() { Key = key, Value = value };
}
