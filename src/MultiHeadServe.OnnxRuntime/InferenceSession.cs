using System.Runtime.InteropServices;
using MultiHeadServe.OnnxRuntime.Native;

namespace MultiHeadServe.OnnxRuntime;

/// <summary>
/// A loaded model (<c>OrtSession</c>). Creating it builds the native session options from
/// <see cref="SessionOptions"/> and applies the execution-provider policy.
/// <para>
/// Thread-safety: <see cref="Run(IReadOnlyList{KeyValuePair{string, OrtValue}}, IReadOnlyList{string}?, OrtRunOptions?)"/>
/// may be called concurrently from many threads on one session (ONNX Runtime supports it). Disposing while
/// runs are in flight is safe: the native session is released when the last run returns.
/// </para>
/// </summary>
public sealed unsafe class InferenceSession : IDisposable
{
    private readonly OrtHandle _handle;
    private readonly OrtEnvironment _environment;
    private readonly bool _environmentAdded;
    private readonly NativeNames _inputNames;
    private readonly NativeNames _outputNames;
    private readonly Dictionary<string, int> _inputIndex;
    private readonly Dictionary<string, int> _outputIndex;
    private int _disposed;

    private InferenceSession(OrtHandle handle, OrtEnvironment environment, string provider, string? fallbackReason)
    {
        _handle = handle;
        _environment = environment;
        // The session needs the environment alive: hold a reference until this session is disposed.
        environment.Handle.DangerousAddRef(ref _environmentAdded);
        ExecutionProvider = provider;
        ProviderFallbackReason = fallbackReason;
        Inputs = ReadMetadata(isInput: true);
        Outputs = ReadMetadata(isInput: false);
        _inputNames = new NativeNames(Inputs.Select(i => i.Name));
        _outputNames = new NativeNames(Outputs.Select(o => o.Name));
        _inputIndex = Inputs.Select((m, i) => (m.Name, i)).ToDictionary(p => p.Name, p => p.i, StringComparer.Ordinal);
        _outputIndex = Outputs.Select((m, i) => (m.Name, i)).ToDictionary(p => p.Name, p => p.i, StringComparer.Ordinal);
    }

    /// <summary>The graph's inputs, in the model's order.</summary>
    public IReadOnlyList<NodeMetadata> Inputs { get; }

    /// <summary>The graph's outputs, in the model's order.</summary>
    public IReadOnlyList<NodeMetadata> Outputs { get; }

    /// <summary>The execution provider the session was created with: "CUDAExecutionProvider" or "CPUExecutionProvider".</summary>
    public string ExecutionProvider { get; }

    /// <summary>When <see cref="OnnxRuntime.ExecutionProvider.Auto"/> fell back to CPU: why CUDA was not used. Null otherwise.</summary>
    public string? ProviderFallbackReason { get; }

    /// <summary>Loads a model file.</summary>
    /// <exception cref="OnnxRuntimeException">The file is missing, corrupt or not a valid model.</exception>
    /// <exception cref="ExecutionProviderUnavailableException"><see cref="OnnxRuntime.ExecutionProvider.Cuda"/> was required but is not usable.</exception>
    public static InferenceSession FromFile(string path, SessionOptions? options = null, OrtEnvironment? environment = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var pathUtf8 = Marshal.StringToCoTaskMemUTF8(path);
        try
        {
            return Create(environment, options, (env, so) =>
            {
                nint session;
                OrtNative.Check(((delegate* unmanaged<nint, nint, nint, nint*, nint>)OrtNative.Fn(OrtNative.Entry.CreateSession))(
                    env, pathUtf8, so, &session));
                return session;
            });
        }
        finally
        {
            Marshal.FreeCoTaskMem(pathUtf8);
        }
    }

    /// <summary>Loads a model from its serialized bytes (ONNX Runtime copies what it needs).</summary>
    public static InferenceSession FromBytes(ReadOnlyMemory<byte> model, SessionOptions? options = null, OrtEnvironment? environment = null)
    {
        using var pin = model.Pin();
        return Create(environment, options, (env, so) =>
        {
            nint session;
            OrtNative.Check(((delegate* unmanaged<nint, void*, nuint, nint, nint*, nint>)OrtNative.Fn(OrtNative.Entry.CreateSessionFromArray))(
                env, pin.Pointer, (nuint)model.Length, so, &session));
            return session;
        });
    }

    private static InferenceSession Create(OrtEnvironment? environment, SessionOptions? options, Func<nint, nint, nint> createSession)
    {
        var env = environment ?? OrtEnvironment.Shared();
        options ??= new SessionOptions();
        var envAdded = false;
        env.Handle.DangerousAddRef(ref envAdded);
        try
        {
            var envHandle = env.Handle.DangerousGetHandle();
            string? fallbackReason = null;
            if (options.ExecutionProvider != OnnxRuntime.ExecutionProvider.Cpu)
            {
                try
                {
                    using var cudaOptions = NativeSessionOptions.Build(options, withCuda: true);
                    var session = createSession(envHandle, cudaOptions.DangerousGetHandle());
                    return new InferenceSession(new OrtHandle(session, OrtNative.Entry.ReleaseSession), env, "CUDAExecutionProvider", null);
                }
                catch (OnnxRuntimeException ex) when (ex.Code != OrtErrorCode.NoSuchFile && ex.Code != OrtErrorCode.InvalidProtobuf)
                {
                    if (options.ExecutionProvider == OnnxRuntime.ExecutionProvider.Cuda)
                    {
                        throw new ExecutionProviderUnavailableException(
                            "The CUDA execution provider is required (ExecutionProvider=Cuda) but is not usable on this host: " +
                            NativeSessionOptions.DescribeCudaFailure(ex.RuntimeMessage), ex);
                    }

                    fallbackReason = NativeSessionOptions.DescribeCudaFailure(ex.RuntimeMessage);
                }
            }

            using var cpuOptions = NativeSessionOptions.Build(options, withCuda: false);
            var cpuSession = createSession(envHandle, cpuOptions.DangerousGetHandle());
            return new InferenceSession(new OrtHandle(cpuSession, OrtNative.Entry.ReleaseSession), env, "CPUExecutionProvider", fallbackReason);
        }
        finally
        {
            if (envAdded)
            {
                env.Handle.DangerousRelease();
            }
        }
    }

    /// <summary>Index of an input by name, or -1.</summary>
    public int InputIndex(string name) => _inputIndex.GetValueOrDefault(name, -1);

    /// <summary>Index of an output by name, or -1.</summary>
    public int OutputIndex(string name) => _outputIndex.GetValueOrDefault(name, -1);

    /// <summary>
    /// Runs the model once. Every graph input must be given exactly once; <paramref name="outputNames"/>
    /// selects outputs (null: all, in the model's order). The result owns the output tensors.
    /// </summary>
    /// <exception cref="OnnxRuntimeException">An unknown or missing input, a wrong shape or element type, a run terminated through <paramref name="runOptions"/>, or an engine failure.</exception>
    public RunResult Run(IReadOnlyList<KeyValuePair<string, OrtValue>> inputs, IReadOnlyList<string>? outputNames = null, OrtRunOptions? runOptions = null)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        Span<int> inputSlots = inputs.Count <= 16 ? stackalloc int[inputs.Count] : new int[inputs.Count];
        for (var i = 0; i < inputs.Count; i++)
        {
            var index = InputIndex(inputs[i].Key);
            if (index < 0)
            {
                throw new OnnxRuntimeException(OrtErrorCode.InvalidArgument,
                    $"Invalid input name: '{inputs[i].Key}'. The model's inputs are: {string.Join(", ", Inputs.Select(x => x.Name))}.");
            }

            inputSlots[i] = index;
        }

        var outputCount = outputNames?.Count ?? Outputs.Count;
        Span<int> outputSlots = outputCount <= 16 ? stackalloc int[outputCount] : new int[outputCount];
        for (var i = 0; i < outputCount; i++)
        {
            var index = outputNames is null ? i : OutputIndex(outputNames[i]);
            if (index < 0)
            {
                throw new OnnxRuntimeException(OrtErrorCode.InvalidArgument,
                    $"Invalid output name: '{outputNames![i]}'. The model's outputs are: {string.Join(", ", Outputs.Select(x => x.Name))}.");
            }

            outputSlots[i] = index;
        }

        return RunCore(inputs, inputSlots, outputSlots, runOptions);
    }

    /// <summary>Runs the model once; cancelling <paramref name="cancellationToken"/> terminates the run in progress.</summary>
    /// <exception cref="OperationCanceledException">The token was cancelled before or during the run.</exception>
    public RunResult Run(IReadOnlyList<KeyValuePair<string, OrtValue>> inputs, IReadOnlyList<string>? outputNames, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!cancellationToken.CanBeCanceled)
        {
            return Run(inputs, outputNames);
        }

        using var runOptions = new OrtRunOptions();
        using var registration = cancellationToken.UnsafeRegister(static state => ((OrtRunOptions)state!).Terminate(), runOptions);
        try
        {
            return Run(inputs, outputNames, runOptions);
        }
        catch (OnnxRuntimeException) when (cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException("The run was cancelled.", cancellationToken);
        }
    }

    private RunResult RunCore(IReadOnlyList<KeyValuePair<string, OrtValue>> inputs, ReadOnlySpan<int> inputSlots, ReadOnlySpan<int> outputSlots, OrtRunOptions? runOptions)
    {
        var inputCount = inputs.Count;
        var outputCount = outputSlots.Length;
        var namesIn = stackalloc nint[inputCount];
        var values = stackalloc nint[inputCount];
        var namesOut = stackalloc nint[outputCount];
        var results = stackalloc nint[outputCount];

        var sessionAdded = false;
        var runOptionsAdded = false;
        var valuesAdded = 0;
        try
        {
            _handle.DangerousAddRef(ref sessionAdded);
            for (var i = 0; i < inputCount; i++)
            {
                var added = false;
                inputs[i].Value.Handle.DangerousAddRef(ref added);
                valuesAdded++;
                namesIn[i] = _inputNames[inputSlots[i]];
                values[i] = inputs[i].Value.DangerousHandle;
            }

            for (var i = 0; i < outputCount; i++)
            {
                namesOut[i] = _outputNames[outputSlots[i]];
                results[i] = 0;
            }

            nint runOptionsHandle = 0;
            if (runOptions is not null)
            {
                runOptions.Handle.DangerousAddRef(ref runOptionsAdded);
                runOptionsHandle = runOptions.Handle.DangerousGetHandle();
            }

            OrtNative.Check(((delegate* unmanaged<nint, nint, nint*, nint*, nuint, nint*, nuint, nint*, nint>)OrtNative.Fn(OrtNative.Entry.Run))(
                _handle.DangerousGetHandle(), runOptionsHandle, namesIn, values, (nuint)inputCount, namesOut, (nuint)outputCount, results));

            var outputs = new OrtValue[outputCount];
            var names = new string[outputCount];
            for (var i = 0; i < outputCount; i++)
            {
                outputs[i] = OrtValue.FromOutput(results[i]);
                names[i] = Outputs[outputSlots[i]].Name;
            }

            return new RunResult(names, outputs);
        }
        finally
        {
            for (var i = 0; i < valuesAdded; i++)
            {
                inputs[i].Value.Handle.DangerousRelease();
            }

            if (runOptionsAdded)
            {
                runOptions!.Handle.DangerousRelease();
            }

            if (sessionAdded)
            {
                _handle.DangerousRelease();
            }
        }
    }

    private NodeMetadata[] ReadMetadata(bool isInput)
    {
        var session = _handle.DangerousGetHandle();
        nuint count;
        OrtNative.Check(((delegate* unmanaged<nint, nuint*, nint>)OrtNative.Fn(
            isInput ? OrtNative.Entry.SessionGetInputCount : OrtNative.Entry.SessionGetOutputCount))(session, &count));
        var result = new NodeMetadata[(int)count];
        for (nuint i = 0; i < count; i++)
        {
            nint namePtr;
            OrtNative.Check(((delegate* unmanaged<nint, nuint, nint, nint*, nint>)OrtNative.Fn(
                isInput ? OrtNative.Entry.SessionGetInputName : OrtNative.Entry.SessionGetOutputName))(session, i, OrtNative.DefaultAllocator, &namePtr));
            string name;
            try
            {
                name = Marshal.PtrToStringUTF8(namePtr) ?? "";
            }
            finally
            {
                OrtNative.FreeWithDefaultAllocator(namePtr);
            }

            nint typeInfo;
            OrtNative.Check(((delegate* unmanaged<nint, nuint, nint*, nint>)OrtNative.Fn(
                isInput ? OrtNative.Entry.SessionGetInputTypeInfo : OrtNative.Entry.SessionGetOutputTypeInfo))(session, i, &typeInfo));
            using var typeInfoHandle = new OrtHandle(typeInfo, OrtNative.Entry.ReleaseTypeInfo);
            int onnxType;
            OrtNative.Check(((delegate* unmanaged<nint, int*, nint>)OrtNative.Fn(OrtNative.Entry.GetOnnxTypeFromTypeInfo))(typeInfo, &onnxType));
            const int OnnxTypeTensor = 1;
            if (onnxType != OnnxTypeTensor)
            {
                result[(int)i] = new NodeMetadata(name, TensorElementType.Undefined, [], []);
                continue;
            }

            nint tensorInfo;
            // Owned by the type info: not released separately.
            OrtNative.Check(((delegate* unmanaged<nint, nint*, nint>)OrtNative.Fn(OrtNative.Entry.CastTypeInfoToTensorInfo))(typeInfo, &tensorInfo));
            var (type, shape, symbolic) = TensorInfo.Read(tensorInfo);
            result[(int)i] = new NodeMetadata(name, type, shape, symbolic);
        }

        return result;
    }

    /// <summary>Releases the session (deferred until in-flight runs return). Safe to call twice.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _handle.Dispose();
        _inputNames.Dispose();
        _outputNames.Dispose();
        if (_environmentAdded)
        {
            _environment.Handle.DangerousRelease();
        }
    }
}

/// <summary>The outputs of one run; owns the tensors. Dispose to release them.</summary>
public sealed class RunResult : IDisposable
{
    private readonly string[] _names;
    private readonly OrtValue[] _values;

    internal RunResult(string[] names, OrtValue[] values)
    {
        _names = names;
        _values = values;
    }

    public int Count => _values.Length;

    public OrtValue this[int index] => _values[index];

    /// <summary>The output with this name.</summary>
    public OrtValue this[string name]
    {
        get
        {
            var index = Array.IndexOf(_names, name);
            return index >= 0 ? _values[index] : throw new KeyNotFoundException($"The run has no output named '{name}'.");
        }
    }

    public IReadOnlyList<string> Names => _names;

    public void Dispose()
    {
        foreach (var value in _values)
        {
            value.Dispose();
        }
    }
}
