using System.Buffers;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using MultiHeadServe.Onnx;
using OrtGraphOptimizationLevel = Microsoft.ML.OnnxRuntime.GraphOptimizationLevel;
using SessionOptions = Microsoft.ML.OnnxRuntime.SessionOptions;

namespace MultiHeadServe.Inference.Engine;

/// <summary>
/// One loaded model on ONNX Runtime (official managed API): the execution-provider policy applied at creation,
/// the graph's inputs and outputs described in the service's own types, and runs that write every output
/// straight into arrays the service owns.
/// <para>
/// Thread-safety: <see cref="Run"/> may be called concurrently from many threads (ONNX Runtime supports it).
/// Disposing while runs are in flight is safe: the native session is released when the last run returns, and
/// runs that start after disposal throw <see cref="ObjectDisposedException"/>.
/// </para>
/// </summary>
public sealed class ModelSession : IDisposable
{
    private readonly InferenceSession _session;
    private readonly Dictionary<string, int> _outputIndex;

    // Shared by runs that cannot be cancelled; nothing ever sets Terminate on it.
    private readonly RunOptions _uncancellable = new();
    private int _references = 1;
    private int _disposed;

    private ModelSession(InferenceSession session, string provider, string? fallbackReason)
    {
        _session = session;
        ExecutionProvider = provider;
        ProviderFallbackReason = fallbackReason;
        Inputs = [.. session.InputNames.Select(name => Describe(name, session.InputMetadata[name]))];
        Outputs = [.. session.OutputNames.Select(name => Describe(name, session.OutputMetadata[name]))];
        _outputIndex = Outputs.Select((o, i) => (o.Name, i)).ToDictionary(p => p.Name, p => p.i, StringComparer.Ordinal);
    }

    /// <summary>The graph's inputs, in the model's order.</summary>
    public IReadOnlyList<TensorMetadata> Inputs { get; }

    /// <summary>The graph's outputs, in the model's order.</summary>
    public IReadOnlyList<TensorMetadata> Outputs { get; }

    /// <summary>The execution provider the session runs on: "CUDAExecutionProvider" or "CPUExecutionProvider".</summary>
    public string ExecutionProvider { get; }

    /// <summary>When <see cref="Engine.ExecutionProvider.Auto"/> fell back to CPU: why CUDA was not used. Null otherwise.</summary>
    public string? ProviderFallbackReason { get; }

    /// <summary>Loads a model file.</summary>
    /// <exception cref="InferenceEngineException">The file is missing, corrupt or not a model ONNX Runtime can run.</exception>
    /// <exception cref="ExecutionProviderUnavailableException"><see cref="Engine.ExecutionProvider.Cuda"/> was required but is not usable.</exception>
    public static ModelSession FromFile(string path, SessionSettings settings)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return Create(settings, options => new InferenceSession(path, options));
    }

    /// <summary>Loads a model from its serialized bytes.</summary>
    /// <exception cref="InferenceEngineException">The bytes are not a model ONNX Runtime can run.</exception>
    /// <exception cref="ExecutionProviderUnavailableException"><see cref="Engine.ExecutionProvider.Cuda"/> was required but is not usable.</exception>
    public static ModelSession FromBytes(byte[] model, SessionSettings settings)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Create(settings, options => new InferenceSession(model, options));
    }

    /// <summary>Index of an output by name, or -1.</summary>
    public int OutputIndex(string name) => _outputIndex.GetValueOrDefault(name, -1);

    /// <summary>
    /// One run: <paramref name="input"/> (read in place, not copied) feeds <paramref name="inputName"/> with
    /// <paramref name="shape"/>; each output in <paramref name="outputNames"/> is written into a new array the
    /// caller owns. Cancelling <paramref name="cancellationToken"/> terminates the run in progress.
    /// </summary>
    /// <exception cref="ArgumentException">An output name the model does not have.</exception>
    /// <exception cref="InferenceEngineException">A wrong shape, a non-float32 output, or another engine failure.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled before or during the run.</exception>
    /// <exception cref="ObjectDisposedException">The session was disposed.</exception>
    public SessionOutputs Run(string inputName, ReadOnlyMemory<float> input, ReadOnlySpan<long> shape, IReadOnlyList<string> outputNames, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(outputNames);
        cancellationToken.ThrowIfCancellationRequested();
        var outputs = new float[outputNames.Count][];
        var shapes = new long[outputNames.Count][];
        var types = new TensorElementType[outputNames.Count];
        var preallocated = true;
        for (var o = 0; o < outputNames.Count; o++)
        {
            var index = OutputIndex(outputNames[o]);
            if (index < 0)
            {
                throw new ArgumentException(
                    $"'{outputNames[o]}' is not an output of the model (outputs: {string.Join(", ", Outputs.Select(x => x.Name))}).", nameof(outputNames));
            }

            var metadata = Outputs[index];
            types[o] = metadata.ElementType;
            if (metadata.ElementType != TensorElementType.Float32)
            {
                if (ElementSize(metadata.ElementType) == 0)
                {
                    throw new InferenceEngineException($"Output '{metadata.Name}' is {metadata.ElementType.ToName()}; only numeric and bool outputs are served.");
                }

                // Heads read float32 only; other outputs (class indices, masks) are copied once as the runtime wrote them.
                preallocated = false;
            }

            shapes[o] = KnownShape(metadata, shape.Length > 0 ? shape[0] : 1)!;
            preallocated &= shapes[o] is not null;
        }

        ObjectDisposedException.ThrowIf(!TryAcquire(), this);

        var cancellable = cancellationToken.CanBeCanceled ? new RunOptions() : null;
        try
        {
            using var registration = cancellable is null
                ? default
                : cancellationToken.UnsafeRegister(static state => ((RunOptions)state!).Terminate = true, cancellable);
            using var aligned = AlignedInput.From(input);
            using var inputValue = OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float,
                shape.ToArray(), aligned.Pointer, input.Length * (long)sizeof(float));
            if (preallocated)
            {
                RunInto(cancellable ?? _uncancellable, inputName, inputValue, outputNames, outputs, shapes);
                return new SessionOutputs(outputs, shapes);
            }

            var raw = new byte[]?[outputNames.Count];
            RunAndCopy(cancellable ?? _uncancellable, inputName, inputValue, outputNames, outputs, shapes, types, raw);
            return new SessionOutputs(outputs, shapes) { ElementTypes = types, RawData = raw };
        }
        catch (OnnxRuntimeException) when (cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException("The run was cancelled.", cancellationToken);
        }
        catch (OnnxRuntimeException ex)
        {
            throw new InferenceEngineException(ex.Message, ex);
        }
        finally
        {
            cancellable?.Dispose();
            Release();
        }
    }

    /// <summary>Every output's dimensions are known once the batch is: the runtime writes into arrays allocated here.</summary>
    private void RunInto(RunOptions runOptions, string inputName, OrtValue input, IReadOnlyList<string> outputNames, float[][] outputs, long[][] shapes)
    {
        var values = new OrtValue[outputNames.Count];
        try
        {
            for (var o = 0; o < values.Length; o++)
            {
                outputs[o] = new float[ElementCount(shapes[o])];
                values[o] = OrtValue.CreateTensorValueFromMemory(outputs[o], shapes[o]);
            }

            _session.Run(runOptions, [inputName], [input], outputNames, values);
        }
        finally
        {
            foreach (var value in values)
            {
                value?.Dispose();
            }
        }
    }

    /// <summary>An output with a dimension only the run decides: the runtime allocates it, and it is copied once.</summary>
    private void RunAndCopy(RunOptions runOptions, string inputName, OrtValue input, IReadOnlyList<string> outputNames, float[][] outputs, long[][] shapes,
        TensorElementType[] types, byte[]?[] raw)
    {
        using var results = _session.Run(runOptions, [inputName], [input], outputNames);
        var o = 0;
        foreach (var result in results)
        {
            shapes[o] = result.GetTensorTypeAndShape().Shape;
            if (types[o] == TensorElementType.Float32)
            {
                outputs[o] = result.GetTensorDataAsSpan<float>().ToArray();
            }
            else
            {
                outputs[o] = [];
                raw[o] = result.GetTensorMutableRawData().ToArray();
            }

            o++;
        }
    }

    /// <summary>Bytes per element of a fixed-size element type; 0 for strings and types the service does not serve.</summary>
    public static int ElementSize(TensorElementType type) => type switch
    {
        TensorElementType.Float32 or TensorElementType.Int32 or TensorElementType.UInt32 => 4,
        TensorElementType.Float64 or TensorElementType.Int64 or TensorElementType.UInt64 => 8,
        TensorElementType.Float16 or TensorElementType.BFloat16 or TensorElementType.Int16 or TensorElementType.UInt16 => 2,
        TensorElementType.Int8 or TensorElementType.UInt8 or TensorElementType.Bool => 1,
        _ => 0,
    };

    /// <summary>The output's shape for a batch of <paramref name="rows"/>, or null when a dimension other than the batch is dynamic.</summary>
    private static long[]? KnownShape(TensorMetadata output, long rows)
    {
        var shape = new long[output.Shape.Count];
        for (var d = 0; d < shape.Length; d++)
        {
            var dimension = output.Shape[d];
            if (dimension < 0 && d > 0)
            {
                return null;
            }

            shape[d] = d == 0 && dimension < 0 ? rows : dimension;
        }

        return shape;
    }

    private static int ElementCount(long[] shape)
    {
        long count = 1;
        foreach (var dimension in shape)
        {
            count = checked(count * dimension);
        }

        return checked((int)count);
    }

    private static ModelSession Create(SessionSettings settings, Func<SessionOptions, InferenceSession> open)
    {
        ArgumentNullException.ThrowIfNull(settings);
        _ = RuntimeEnvironment.Environment();
        string? fallbackReason = null;
        if (settings.Provider != Engine.ExecutionProvider.Cpu)
        {
            var (session, reason) = TryCuda(settings, open);
            if (session is not null)
            {
                return new ModelSession(session, "CUDAExecutionProvider", null);
            }

            if (settings.Provider == Engine.ExecutionProvider.Cuda)
            {
                throw new ExecutionProviderUnavailableException(
                    $"The CUDA execution provider is required (ExecutionProvider=Cuda) but is not usable on this host: {reason}");
            }

            fallbackReason = reason;
        }

        using var options = Options(settings);
        try
        {
            return new ModelSession(open(options), "CPUExecutionProvider", fallbackReason);
        }
        catch (OnnxRuntimeException ex)
        {
            throw new InferenceEngineException(ex.Message, ex);
        }
    }

    /// <summary>A session on CUDA, or why there is none. A model the runtime cannot read is not a provider problem and is thrown.</summary>
    private static (InferenceSession? Session, string? Reason) TryCuda(SessionSettings settings, Func<SessionOptions, InferenceSession> open)
    {
        using var capture = RuntimeEnvironment.CaptureMessages();
        using var options = Options(settings);
        try
        {
            options.AppendExecutionProvider_CUDA(settings.CudaDeviceId);
            return (open(options), null);
        }
        catch (EntryPointNotFoundException)
        {
            return (null, "this build carries the CPU-only ONNX Runtime package, which has no CUDA execution provider " +
                "(build with -p:OnnxRuntimeGpu=true for the CUDA package)");
        }
        catch (OnnxRuntimeException ex) when (IsUnreadableModel(ex))
        {
            throw new InferenceEngineException(ex.Message, ex);
        }
        catch (OnnxRuntimeException ex)
        {
            return (null, RuntimeEnvironment.DescribeCudaFailure(ex.Message, capture.Messages));
        }
    }

    /// <summary>The runtime names its error code at the start of the message (the code itself is not public).</summary>
    private static bool IsUnreadableModel(OnnxRuntimeException ex) =>
        ex.Message.Contains("[ErrorCode:NoSuchFile]", StringComparison.Ordinal) || ex.Message.Contains("[ErrorCode:InvalidProtobuf]", StringComparison.Ordinal);

    private static SessionOptions Options(SessionSettings settings)
    {
        var options = new SessionOptions
        {
            IntraOpNumThreads = settings.IntraOpThreads,
            GraphOptimizationLevel = settings.GraphOptimizationLevel switch
            {
                GraphOptimizationLevel.DisableAll => OrtGraphOptimizationLevel.ORT_DISABLE_ALL,
                GraphOptimizationLevel.Basic => OrtGraphOptimizationLevel.ORT_ENABLE_BASIC,
                GraphOptimizationLevel.Extended => OrtGraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                _ => OrtGraphOptimizationLevel.ORT_ENABLE_ALL,
            },
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            LogId = "MultiHeadServe",
        };
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", settings.AllowSpinning ? "1" : "0");
        if (settings.SharedCpuArena)
        {
            RuntimeEnvironment.EnsureSharedCpuArena();
            options.AddSessionConfigEntry("session.use_env_allocators", "1");
        }

        return options;
    }

    private static TensorMetadata Describe(string name, NodeMetadata metadata) => metadata.IsTensor
        ? new TensorMetadata(name, (TensorElementType)(int)metadata.ElementDataType,
            [.. metadata.Dimensions.Select(d => (long)d)], [.. metadata.SymbolicDimensions.Select(s => s ?? "")])
        : new TensorMetadata(name, TensorElementType.Undefined, [], []);

    private bool TryAcquire() => ReferenceCount.TryAcquire(ref _references);

    private void Release()
    {
        if (Interlocked.Decrement(ref _references) == 0)
        {
            _session.Dispose();
            _uncancellable.Dispose();
        }
    }

    /// <summary>Releases the session once in-flight runs have returned. Safe to call twice.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Release();
        }
    }
}

/// <summary>One run's outputs, in the order they were asked for: row-major values and their shapes.</summary>
/// <param name="Data">Float32 outputs' values; empty for an output of another element type (see <see cref="RawData"/>).</param>
/// <param name="Shapes">Each output's shape.</param>
public sealed record SessionOutputs(float[][] Data, long[][] Shapes)
{
    /// <summary>Each output's element type; null when every output is float32.</summary>
    public TensorElementType[]? ElementTypes { get; init; }

    /// <summary>For an output that is not float32: its values as the runtime wrote them (little-endian, row-major); null otherwise.</summary>
    public byte[]?[]? RawData { get; init; }
}

/// <summary>
/// An input tensor's memory on a 64-byte boundary, as the runtime's vector kernels read it. Given the same values at
/// another alignment, ONNX Runtime's CPU kernels can round differently in the last bit (a convolution's sums are split
/// where the data's alignment puts them): the same image gave two answers in alternate requests, which also made the
/// wires disagree. Aligned memory is used where it is (pinned for the run); other memory is copied once into an
/// aligned buffer (a 64x64 image is 48 KB, a few microseconds), so the same input always gives the same bits.
/// </summary>
internal readonly struct AlignedInput : IDisposable
{
    private const int Alignment = 64;

    private readonly MemoryHandle _pin;
    private readonly unsafe void* _copy;

    private unsafe AlignedInput(MemoryHandle pin, void* copy, IntPtr pointer)
    {
        _pin = pin;
        _copy = copy;
        Pointer = pointer;
    }

    /// <summary>The input's first value, 64-byte aligned; valid until disposed.</summary>
    public IntPtr Pointer { get; }

    public static unsafe AlignedInput From(ReadOnlyMemory<float> input)
    {
        var pin = input.Pin();
        if (((nint)pin.Pointer & (Alignment - 1)) == 0)
        {
            return new AlignedInput(pin, null, (IntPtr)pin.Pointer);
        }

        pin.Dispose();
        var bytes = (nuint)input.Length * sizeof(float);
        var copy = NativeMemory.AlignedAlloc(Math.Max(bytes, Alignment), Alignment);
        input.Span.CopyTo(new Span<float>(copy, input.Length));
        return new AlignedInput(default, copy, (IntPtr)copy);
    }

    public unsafe void Dispose()
    {
        _pin.Dispose();
        if (_copy is not null)
        {
            NativeMemory.AlignedFree(_copy);
        }
    }
}
