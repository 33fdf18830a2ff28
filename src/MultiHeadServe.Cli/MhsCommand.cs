using System.CommandLine;
using MultiHeadServe.Cli.Commands;

namespace MultiHeadServe.Cli;

/// <summary>The <c>mhs</c> command tree.</summary>
internal static class MhsCommand
{
    public static RootCommand Create() =>
        new("mhs: inspect, fuse, prune and compose the ONNX models MultiHeadServe serves, and load or unload them on a running service.")
        {
            InspectCommand.Create(),
            FuseCommand.Create(),
            PruneCommand.Create(),
            ComposeCommand.Create(),
            DynamicBatchCommand.Create(),
            ModelsCommand.Create(),
        };
}
