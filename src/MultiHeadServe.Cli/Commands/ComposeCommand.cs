using System.CommandLine;
using MultiHeadServe.Onnx;

namespace MultiHeadServe.Cli.Commands;

/// <summary>
/// <c>mhs compose &lt;out.onnx&gt; &lt;backbone.onnx&gt; &lt;head.onnx&gt; [--map value=input ...]</c>: a head
/// trained on a backbone's features becomes one deployable model with it.
/// </summary>
internal static class ComposeCommand
{
    public static Command Create()
    {
        var output = new Argument<string>("output") { Description = "The composed ONNX file to write (replaced if it exists)." };
        var backbone = new Argument<string>("backbone") { Description = "The ONNX model whose values feed the head." };
        var head = new Argument<string>("head") { Description = "The ONNX model that reads them." };
        var map = new Option<string[]>("--map")
        {
            Description = "Connect a backbone value (an output or any intermediate value) to a head input: <backbone value>=<head input>. " +
                          "Repeatable. Default: the backbone's only output feeds the head's only input.",
        };
        var backbonePrefix = new Option<string?>("--backbone-prefix") { Description = "Prefix for the backbone's internal names." };
        var headPrefix = new Option<string?>("--head-prefix") { Description = "Prefix for the head's internal names." };
        var backboneOutputs = new Option<BackboneOutputs>("--backbone-outputs")
        {
            Description = "Which backbone outputs the result returns besides the head's: Unread (those the head does not read), All, None.",
            DefaultValueFactory = _ => BackboneOutputs.Unread,
        };
        var dynamicBatch = new Option<bool>("--dynamic-batch")
        {
            Description = "Make a fixed batch dimension dynamic in the result (as 'mhs dynamic-batch').",
        };

        var command = new Command("compose", "Compose a backbone and a head into one model: the head reads values the backbone computes.")
        {
            output, backbone, head, map, backbonePrefix, headPrefix, backboneOutputs, dynamicBatch,
        };
        command.SetAction(parsed =>
        {
            var options = new ComposeOptions
            {
                Map = Connections(parsed.GetValue(map) ?? []),
                BackbonePrefix = parsed.GetValue(backbonePrefix),
                HeadPrefix = parsed.GetValue(headPrefix),
                BackboneOutputs = parsed.GetValue(backboneOutputs),
            };
            var first = OnnxModel.Load(parsed.GetRequiredValue(backbone));
            var second = OnnxModel.Load(parsed.GetRequiredValue(head));
            var proto = ModelComposition.Compose(first.Proto, second.Proto, options);
            if (parsed.GetValue(dynamicBatch))
            {
                proto = BatchDimension.MakeDynamic(proto);
            }

            var composed = new OnnxModel(proto);
            var target = parsed.GetRequiredValue(output);
            composed.Save(target);
            parsed.InvocationConfiguration.Output.WriteLine(
                $"Composed {target}: inputs {string.Join(", ", composed.Inputs.Select(value => $"{value.Name} {value.ShapeText}"))}; " +
                $"outputs {string.Join(", ", composed.Outputs.Select(value => $"{value.Name} {value.ShapeText}"))}; " +
                $"opsets {string.Join(", ", composed.OpsetImports.Select(opset => $"{opset.DisplayDomain} {opset.Version}"))}; " +
                $"{composed.NodeCount} nodes, {composed.InitializerCount} initializers ({ByteSize.Format(composed.InitializerBytes)}).");
            return ExitCodes.Success;
        });
        return command;
    }

    private static List<(string Backbone, string Head)> Connections(string[] values)
    {
        var connections = new List<(string, string)>();
        foreach (var value in values)
        {
            var equals = value.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0 || equals == value.Length - 1)
            {
                throw new UsageException($"--map '{value}' is not of the form <backbone value>=<head input>.");
            }

            connections.Add((value[..equals], value[(equals + 1)..]));
        }

        return connections;
    }
}
