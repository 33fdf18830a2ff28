using System.Reflection;
using Google.Protobuf;
using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx;

/// <summary>
/// An ONNX model held in memory: load it from a file or bytes, read what it expects and returns, save it.
/// </summary>
/// <remarks>
/// <para>
/// The instance owns its <see cref="Proto"/>. The inspection members read the proto on every call (nothing
/// is cached), so they reflect edits made through <see cref="Proto"/>.
/// </para>
/// <para>
/// Thread-safety: any number of threads may read and save one instance at a time as long as no thread edits
/// <see cref="Proto"/>; edits need exclusive access.
/// </para>
/// <para>
/// Protocol-buffer files cannot exceed 2 GB; larger models keep their weights in external data files, which
/// this type leaves where they are (tensors keep their relative <c>location</c>, so save next to the
/// original or copy the data files along).
/// </para>
/// </remarks>
public sealed class OnnxModel
{
    private const long MaxProtobufBytes = int.MaxValue;

    /// <summary>Wraps a model proto; the new instance takes ownership of <paramref name="proto"/>.</summary>
    /// <exception cref="OnnxModelException">The proto has no graph.</exception>
    public OnnxModel(ModelProto proto)
    {
        ArgumentNullException.ThrowIfNull(proto);
        if (proto.Graph is null)
        {
            throw new OnnxModelException("The model has no graph.");
        }

        Proto = proto;
    }

    /// <summary>The underlying proto, owned by this instance. Edit it only with exclusive access.</summary>
    public ModelProto Proto { get; }

    /// <summary>The ONNX IR version the model declares.</summary>
    public long IrVersion => Proto.IrVersion;

    /// <summary>The tool that wrote the model, with its version when known (e.g. <c>pytorch 2.3.0</c>).</summary>
    public string Producer => $"{Proto.ProducerName} {Proto.ProducerVersion}".Trim();

    /// <summary>
    /// The values a caller must feed. Graph inputs that are also initializers are left out: they have a stored
    /// value (older exporters list every weight as an input) and are not features.
    /// </summary>
    public IReadOnlyList<ValueSignature> Inputs
    {
        get
        {
            var stored = InitializerNames(Proto.Graph);
            return Proto.Graph.Input.Where(input => !stored.Contains(input.Name)).Select(ValueSignatures.From).ToList();
        }
    }

    /// <summary>The values a run returns, in graph order.</summary>
    public IReadOnlyList<ValueSignature> Outputs => Proto.Graph.Output.Select(ValueSignatures.From).ToList();

    /// <summary>The operator sets the model imports.</summary>
    public IReadOnlyList<OpsetImport> OpsetImports =>
        Proto.OpsetImport.Select(opset => new OpsetImport(opset.Domain, opset.Version)).ToList();

    /// <summary>Nodes in the main graph, not counting nodes inside subgraphs.</summary>
    public int NodeCount => Proto.Graph.Node.Count;

    /// <summary>Dense and sparse initializers (stored weights and constants) of the main graph.</summary>
    public int InitializerCount => Proto.Graph.Initializer.Count + Proto.Graph.SparseInitializer.Count;

    /// <summary>
    /// Bytes the main graph's initializers occupy once loaded (element count times element width; sparse
    /// initializers count their values and indices), wherever they are stored.
    /// </summary>
    public long InitializerBytes =>
        Proto.Graph.Initializer.Sum(TensorPayload.ByteCount) + Proto.Graph.SparseInitializer.Sum(TensorPayload.ByteCount);

    /// <summary>The model's metadata entries; on a duplicate key the last entry wins.</summary>
    public IReadOnlyDictionary<string, string> Metadata
    {
        get
        {
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in Proto.MetadataProps)
            {
                metadata[entry.Key] = entry.Value;
            }

            return metadata;
        }
    }

    /// <summary>Reads a model file.</summary>
    /// <exception cref="OnnxModelException">The file is not a readable ONNX model; the message says why.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static OnnxModel Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path))
        {
            throw new OnnxModelException($"'{path}' is a directory; give the path of an .onnx file in it.");
        }

        if (!File.Exists(path))
        {
            throw new OnnxModelException($"'{path}' does not exist.");
        }

        var length = new FileInfo(path).Length;
        if (length > MaxProtobufBytes)
        {
            throw new OnnxModelException(
                $"'{path}' is {length} bytes; an ONNX file cannot exceed 2 GB. Store the weights as external data.");
        }

        // Parsing from the stream avoids holding the file's bytes and the parsed model at the same time.
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        return Parse(() => ModelProto.Parser.ParseFrom(file), $"'{path}'");
    }

    /// <summary>Reads a model from serialized bytes; the bytes are not retained.</summary>
    /// <exception cref="OnnxModelException">The bytes are not an ONNX model.</exception>
    public static OnnxModel FromBytes(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        return Parse(() => ModelProto.Parser.ParseFrom(bytes), "The data");
    }

    /// <summary>Reads a model from a stream to its end; the stream stays open and is not disposed.</summary>
    /// <exception cref="OnnxModelException">The stream does not hold an ONNX model.</exception>
    public static OnnxModel Load(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return Parse(() => ModelProto.Parser.ParseFrom(stream), "The stream");
    }

    /// <summary>The serialized model.</summary>
    public byte[] ToBytes() => Proto.ToByteArray();

    /// <summary>Writes the serialized model to a stream; the stream stays open.</summary>
    public void WriteTo(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Proto.WriteTo(stream);
    }

    /// <summary>
    /// Writes the model to a file, replacing it if it exists. The bytes go to a temporary file in the same
    /// folder that is then renamed, so readers never see a half-written model.
    /// </summary>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = Path.GetFullPath(path);
        var temporary = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write))
            {
                Proto.WriteTo(file);
            }

            File.Move(temporary, full, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    /// <summary>The version written as <c>producer_version</c> into models this library creates.</summary>
    internal static string LibraryVersion { get; } =
        typeof(OnnxModel).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? "0.0.0";

    internal static HashSet<string> InitializerNames(GraphProto graph)
    {
        var names = new HashSet<string>(graph.Initializer.Select(tensor => tensor.Name), StringComparer.Ordinal);
        names.UnionWith(graph.SparseInitializer.Where(tensor => tensor.Values is not null).Select(tensor => tensor.Values.Name));
        return names;
    }

    private static OnnxModel Parse(Func<ModelProto> parse, string source)
    {
        ModelProto proto;
        try
        {
            proto = parse();
        }
        catch (InvalidProtocolBufferException exception)
        {
            // The parser's own words ("Completed reading a message while more data was available") say nothing to a
            // person holding a text file or an image: name what was expected, keep the detail behind it.
            throw new OnnxModelException(
                $"{source} is not an ONNX model (the file does not parse as the ONNX protobuf format; is it another kind of file?). Detail: {exception.Message}",
                exception);
        }

        // Many byte strings parse as some protobuf message; a model must at least have a graph and an IR version.
        if (proto.Graph is null || proto.IrVersion <= 0)
        {
            throw new OnnxModelException($"{source} is not an ONNX model: it has no graph or no IR version.");
        }

        return new OnnxModel(proto);
    }
}
