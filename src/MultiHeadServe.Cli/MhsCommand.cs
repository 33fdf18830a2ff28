using System.CommandLine;
using MultiHeadServe.Cli.Commands;

namespace MultiHeadServe.Cli;

/// <summary>The <c>mhs</c> command tree.</summary>
internal static class MhsCommand
{
    public static RootCommand Create() =>
        new("mhs: inspect, fuse, prune and compose the ONNX models MultiHeadServe serves, import their features, and load or unload them on a running service.")
        {
            InspectCommand.Create(),
            FuseCommand.Create(),
            PruneCommand.Create(),
            ComposeCommand.Create(),
            DynamicBatchCommand.Create(),
            FeaturesCommand.Create(),
            ModelsCommand.Create(),
        };
}
