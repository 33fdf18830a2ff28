using System.ComponentModel.DataAnnotations;
using MultiHeadServe.Inference.Engine;

namespace MultiHeadServe.Models;

/// <summary>Where models live and how their sessions are created. Section "ModelRepository".</summary>
public sealed class ModelRepositoryOptions
{
    public const string Section = "ModelRepository";

    /// <summary>
    /// The repository folder. A relative path is looked up from the content root and then from each
    /// parent folder, so `dotnet run` from the project folder and a container's /app both find `models/`.
    /// </summary>
    [Required]
    public string Path { get; set; } = "models";

    /// <summary>Execution provider for models whose manifest does not choose one: Auto, Cpu or Cuda.</summary>
    public ExecutionProvider Provider { get; set; } = ExecutionProvider.Auto;

    public int CudaDeviceId { get; set; }

    /// <summary>Threads inside one operator per session; 0 lets ONNX Runtime use one per core.</summary>
    [Range(0, ModelLoader.MaxIntraOpThreads)]
    public int IntraOpThreads { get; set; }

    public GraphOptimizationLevel GraphOptimizationLevel { get; set; } = GraphOptimizationLevel.All;

    /// <summary>
    /// Whether every session draws CPU memory from one shared arena (default) instead of an arena each, so that
    /// versions loaded and unloaded over the service's life reuse the same memory.
    /// </summary>
    public bool SharedCpuArena { get; set; } = true;

    /// <summary>
    /// Whether one compacting garbage collection (and a trim of the C allocator) runs after the start-up load, after a
    /// model loaded while serving, once the versions a reload or unload retired have drained, and after the rare
    /// rebuilds that leave as much garbage (the OpenAPI document, a graph read again to prune it), so the process gives
    /// that memory back at once (default).
    /// A host that runs many services in one process (tests) turns it off: the collection would pause all of them.
    /// </summary>
    public bool CompactAfterUnload { get; set; } = true;

    /// <summary>
    /// The least severe of ONNX Runtime's own messages that reach the service's log (category "OnnxRuntime").
    /// Its errors also reach the service as exceptions and are logged there.
    /// </summary>
    public RuntimeLogLevel RuntimeLogLevel { get; set; } = RuntimeLogLevel.Warning;

    /// <summary>
    /// Seconds between looks at the repository for new, changed and removed models and versions, applied without a
    /// restart; 0 turns polling off (models then change only through the repository API).
    /// </summary>
    [Range(0, 86_400)]
    public double PollIntervalSeconds { get; set; } = 10;

    /// <summary>Only these models are loaded (empty: every model in the repository).</summary>
    public IList<string> Only { get; } = [];
}
