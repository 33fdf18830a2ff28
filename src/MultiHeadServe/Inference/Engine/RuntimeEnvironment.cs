using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;

namespace MultiHeadServe.Inference.Engine;

/// <summary>
/// The process's one ONNX Runtime environment, created on first use with a logging function that sends the
/// runtime's own messages to the service's log (category <c>OnnxRuntime</c>) instead of stderr. While a thread
/// probes an execution provider its messages are captured instead, so the reason a provider cannot load ends up
/// in the one warning the service writes about it. Thread-safe.
/// </summary>
public static partial class RuntimeEnvironment
{
    private static readonly Lock Gate = new();

    // Kept in a field: the native side holds only a function pointer to it.
    private static readonly DOrtLoggingFunction Callback = Forward;

    // ONNX Runtime's ArenaExtendStrategy::kSameAsRequested.
    private const int SameAsRequested = 1;

    private static volatile bool s_sharedCpuArena;
    private static volatile ILogger s_logger = NullLogger.Instance;
    private static volatile int s_minimumLevel = (int)RuntimeLogLevel.Warning;

    [ThreadStatic]
    private static List<string>? t_captured;

    /// <summary>The version of the loaded ONNX Runtime library, e.g. "1.31.0".</summary>
    public static string RuntimeVersion => Environment().GetVersionString();

    /// <summary>Where the runtime's messages go from now on, and the least severe one forwarded.</summary>
    public static void UseLogger(ILoggerFactory loggerFactory, RuntimeLogLevel minimumLevel)
    {
        ArgumentNullException.ThrowIfNull(loggerFactory);
        s_logger = loggerFactory.CreateLogger("OnnxRuntime");
        s_minimumLevel = (int)minimumLevel;
    }

    /// <summary>The environment, created with the forwarding logger on first use.</summary>
    internal static OrtEnv Environment()
    {
        lock (Gate)
        {
            if (!OrtEnv.IsCreated)
            {
                // Errors always reach the callback: a provider probe needs them even when the log wants only fatal ones.
                var options = new EnvironmentCreationOptions
                {
                    logId = "MultiHeadServe",
                    logLevel = (OrtLoggingLevel)Math.Min(s_minimumLevel, (int)RuntimeLogLevel.Warning),
                    loggingFunction = Callback,
                };
                return OrtEnv.CreateInstanceWithOptions(ref options);
            }

            return OrtEnv.Instance();
        }
    }

    /// <summary>
    /// Registers the environment's one CPU arena allocator, once. Sessions that ask for the environment's allocators
    /// (<c>session.use_env_allocators</c>) all draw from it, so a version loaded after another was unloaded reuses
    /// the memory the old one returned to the arena. The arena grows by what is asked of it, not by powers of two.
    /// </summary>
    internal static void EnsureSharedCpuArena()
    {
        if (s_sharedCpuArena)
        {
            return;
        }

        var environment = Environment();
        lock (Gate)
        {
            if (s_sharedCpuArena)
            {
                return;
            }

            using var arena = new OrtArenaCfg(maxMemory: 0, arenaExtendStrategy: SameAsRequested, initialChunkSizeBytes: -1, maxDeadBytesPerChunk: -1);
            environment.CreateAndRegisterAllocator(OrtMemoryInfo.DefaultInstance, arena);
            s_sharedCpuArena = true;
        }
    }

    /// <summary>Captures the runtime's messages on this thread until disposed (they are not logged meanwhile).</summary>
    internal static Capture CaptureMessages() => new();

    private static void Forward(IntPtr param, OrtLoggingLevel severity, string category, string logId, string codeLocation, string message)
    {
        if (t_captured is { } captured)
        {
            captured.Add(message);
            return;
        }

        if ((int)severity < s_minimumLevel)
        {
            return;
        }

        var level = severity switch
        {
            OrtLoggingLevel.ORT_LOGGING_LEVEL_VERBOSE => LogLevel.Trace,
            OrtLoggingLevel.ORT_LOGGING_LEVEL_INFO => LogLevel.Debug,
            OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING => LogLevel.Warning,
            OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR => LogLevel.Error,
            _ => LogLevel.Critical,
        };
        s_logger.Log(level, "ONNX Runtime [{Category}] {RuntimeMessage}", category, message);
    }

    /// <summary>
    /// Why the CUDA provider could not start, in words an operator can act on: the library that is missing
    /// where the runtime names one, otherwise the runtime's own message.
    /// </summary>
    internal static string DescribeCudaFailure(string exceptionMessage, IReadOnlyList<string> captured)
    {
        foreach (var line in captured)
        {
            var match = MissingLibrary().Match(line);
            if (match.Success)
            {
                return $"{Path.GetFileName(match.Groups["library"].Value)} cannot be loaded because {match.Groups["missing"].Value} is missing " +
                    "(the CUDA execution provider needs the CUDA 13 and cuDNN 9 runtime libraries on the library path, and a GPU)";
            }
        }

        var detail = captured.Count > 0 ? $" ({string.Join("; ", captured.Select(c => c.Trim()))})" : "";
        return $"ONNX Runtime could not start the CUDA execution provider: {exceptionMessage.Trim()}{detail}";
    }

    [GeneratedRegex(@"Failed to load library (?<library>\S+) with error: (?<missing>[^:\s]+): cannot open shared object file")]
    private static partial Regex MissingLibrary();

    /// <summary>A capture of the runtime's messages on the current thread.</summary>
    internal sealed class Capture : IDisposable
    {
        private readonly List<string>? _outer = t_captured;

        public Capture() => t_captured = Messages;

        public List<string> Messages { get; } = [];

        public void Dispose() => t_captured = _outer;
    }
}
