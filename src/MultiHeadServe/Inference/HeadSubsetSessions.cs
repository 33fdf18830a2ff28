using System.Collections.Concurrent;
using MultiHeadServe.Inference.Engine;
using MultiHeadServe.Onnx;
using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Inference;

/// <summary>
/// A model's full session and, for requests that ask for some of its outputs only, sessions over the graph pruned
/// to those outputs (so a request for one head of three runs only that head's part of the graph). A pruned session
/// is made on the first request for its output set, warmed, and kept; at most <see cref="MaxPrunedSessions"/>
/// of them, after which further subsets run on the full session. A subset that needs nearly all of the graph (one
/// head of a backbone with small heads) runs on the full session too: pruning would skip little work and hold a
/// second copy of the model. Still one fetch and one run per request. Thread-safe; owns every session it holds.
/// </summary>
public sealed class HeadSubsetSessions : IDisposable
{
    /// <summary>Output sets beyond this many share the full session: each pruned session holds its own weights.</summary>
    public const int MaxPrunedSessions = 16;

    /// <summary>
    /// The default largest share of the model's weight bytes a pruned graph may keep and still get its own session.
    /// Weights stand for both costs: the memory a session holds and, roughly, the work a run does.
    /// </summary>
    public const double DefaultMaxWeightShare = 0.75;

    // Read when a subset is first asked for (most models never are), and not kept: a model's graph is as large as its
    // weights. What pruning keeps of it for any subset is kept (a few bytes per weight), so the graph is read again only
    // for a subset that gets its own session: at most MaxPrunedSessions times.
    private readonly PrunableGraph? _graph;
    private PruningPlan? _plan;
    private readonly double _maxWeightShare;
    private readonly string _model;
    private readonly SessionSettings _settings;
    private readonly string _input;
    private readonly IReadOnlyList<long> _rowShape;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<ulong, Lazy<ModelSession?>> _pruned = new();
    private readonly ulong _allOutputs;

    /// <param name="full">The session over the whole graph; owned from now on.</param>
    /// <param name="graph">
    /// Gives the graph <paramref name="full"/> was created from, to prune: read when a subset is first asked for (and
    /// when that throws, the subset runs on the full session). Null: no pruning.
    /// </param>
    /// <param name="settings">How pruned sessions are created (as the full one was).</param>
    /// <param name="input">The feature input every run feeds.</param>
    /// <param name="rowShape">One row's shape, for the warm-up run.</param>
    /// <param name="logger">Where a subset that cannot be pruned is reported.</param>
    /// <param name="maxWeightShare">The largest share of the weights a pruned graph may keep (see <see cref="DefaultMaxWeightShare"/>).</param>
    /// <param name="model">The model and version the log names.</param>
    public HeadSubsetSessions(
        ModelSession full, PrunableGraph? graph, SessionSettings settings, string input, IReadOnlyList<long> rowShape, ILogger logger,
        double maxWeightShare = DefaultMaxWeightShare, string model = "the model")
    {
        ArgumentNullException.ThrowIfNull(full);
        Full = full;
        _settings = settings;
        _input = input;
        _rowShape = rowShape;
        _logger = logger;
        // Pruning is keyed by a bit per output; a graph with more outputs always runs whole.
        _graph = full.Outputs.Count <= PruningPlan.MaxOutputs ? graph : null;
        _maxWeightShare = maxWeightShare;
        _model = model;
        _allOutputs = full.Outputs.Count >= 64 ? ulong.MaxValue : (1UL << full.Outputs.Count) - 1;
        _plan = graph?.Plan;
    }

    /// <summary>The session over the whole graph: its metadata describes the model.</summary>
    public ModelSession Full { get; }

    /// <summary>How many pruned sessions exist now.</summary>
    public int PrunedCount => _pruned.Values.Count(p => p.IsValueCreated && p.Value is not null);

    /// <summary>The session to run for <paramref name="outputNames"/>: pruned to them when they are a strict subset.</summary>
    public ModelSession For(IReadOnlyList<string> outputNames)
    {
        ArgumentNullException.ThrowIfNull(outputNames);
        if (_graph is null)
        {
            return Full;
        }

        ulong mask = 0;
        foreach (var name in outputNames)
        {
            var index = Full.OutputIndex(name);
            if (index < 0)
            {
                // The full session names the unknown output in its error.
                return Full;
            }

            mask |= 1UL << index;
        }

        if (mask == _allOutputs || mask == 0)
        {
            return Full;
        }

        if (!_pruned.TryGetValue(mask, out var pruned))
        {
            if (_pruned.Count >= MaxPrunedSessions)
            {
                return Full;
            }

            pruned = _pruned.GetOrAdd(mask, key => new Lazy<ModelSession?>(() => Create(key), LazyThreadSafetyMode.ExecutionAndPublication));
        }

        return pruned.Value ?? Full;
    }

    private ModelSession? Create(ulong mask)
    {
        var names = Full.Outputs.Where((_, i) => (mask & (1UL << i)) != 0).Select(o => o.Name).ToList();
        ModelSession? session = null;
        ModelProto? whole = null;
        try
        {
            var plan = Volatile.Read(ref _plan);
            if (plan is null)
            {
                whole = _graph!.Read();
                plan = PruningPlan.Of(whole);
                Volatile.Write(ref _plan, plan);
            }

            var planned = plan.Mask(names) ?? throw new InvalidOperationException("the graph's outputs are not the session's");
            if (!plan.Reads(_input, planned))
            {
                // These outputs do not read the features at all: nothing to gain, run the full graph.
                return null;
            }

            var weights = plan.TotalWeightBytes;
            var kept = plan.WeightBytes(planned);
            if (weights > 0 && kept > weights * _maxWeightShare)
            {
                _logger.LogInformation(
                    "Outputs {Outputs} of {Model} run on the full graph: pruned to them it keeps {Share:P0} of the weights, too much to be worth a second session",
                    string.Join(", ", names), _model, (double)kept / weights);
                return null;
            }

            whole ??= _graph!.Read();
            session = ModelSession.FromBytes(new OnnxModel(ModelPruning.Prune(whole, names)).ToBytes(), _settings);
            long[] shape = [1, .. _rowShape];
            _ = session.Run(_input, new float[_rowShape.Aggregate(1L, (a, d) => a * d)], shape, names, CancellationToken.None);
            return session;
        }
#pragma warning disable CA1031 // A subset that cannot be pruned runs on the full graph; the request must not fail for it.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            session?.Dispose();
            _logger.LogWarning(ex, "Outputs {Outputs} of {Model} run on the full graph: pruning them failed", string.Join(", ", names), _model);
            return null;
        }
        finally
        {
            if (whole is not null)
            {
                // Reading the graph left garbage as large as the model; the caller may give it back.
                _graph!.AfterRead?.Invoke();
            }
        }
    }

    public void Dispose()
    {
        foreach (var pruned in _pruned.Values.Where(p => p.IsValueCreated))
        {
            pruned.Value?.Dispose();
        }

        Full.Dispose();
    }
}
