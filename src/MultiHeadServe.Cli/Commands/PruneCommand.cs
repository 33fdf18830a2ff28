using System.CommandLine;
using MultiHeadServe.Onnx;

namespace MultiHeadServe.Cli.Commands;

/// <summary>
/// <c>mhs prune &lt;in.onnx&gt; &lt;out.onnx&gt; --keep a,b</c>: a model cut down to some of its outputs and
/// only the nodes, weights and inputs they need.
/// </summary>
internal static class PruneCommand
{
    public static Command Create()
    {
        var input = new Argument<string>("input") { Description = "The ONNX file to prune." };
        var output = new Argument<string>("output") { Description = "The pruned ONNX file to write (replaced if it exists)." };
        var keep = new Option<string[]>("--keep")
        {
            Description = "Comma-separated outputs to keep; repeatable.",
            Required = true,
        };

        var command = new Command("prune", "Keep only some outputs of a model and the part of the graph they need.")
        {
            input, output, keep,
        };
        command.SetAction(parsed =>
        {
            var outputs = CommandLineHost.SplitList(parsed.GetValue(keep));
            if (outputs.Count == 0)
            {
                throw new UsageException("--keep names no output.");
            }

            var original = OnnxModel.Load(parsed.GetRequiredValue(input));
            var pruned = new OnnxModel(ModelPruning.Prune(original.Proto, outputs));
            var target = parsed.GetRequiredValue(output);
            pruned.Save(target);

            parsed.InvocationConfiguration.Output.WriteLine(
                $"Kept {string.Join(", ", pruned.Outputs.Select(value => value.Name))} in {target}: " +
                $"{pruned.NodeCount} of {original.NodeCount} nodes, {pruned.InitializerCount} of {original.InitializerCount} initializers " +
                $"({ByteSize.Format(pruned.InitializerBytes)} of {ByteSize.Format(original.InitializerBytes)}); " +
                $"inputs {string.Join(", ", pruned.Inputs.Select(value => value.Name))}.");
            return ExitCodes.Success;
        });
        return command;
    }
}
