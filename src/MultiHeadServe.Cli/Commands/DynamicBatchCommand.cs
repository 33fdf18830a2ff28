using System.CommandLine;
using MultiHeadServe.Onnx;

namespace MultiHeadServe.Cli.Commands;

/// <summary>
/// <c>mhs dynamic-batch &lt;in.onnx&gt; &lt;out.onnx&gt; [--symbol batch]</c>: a model exported at a fixed batch
/// size accepts any batch size.
/// </summary>
internal static class DynamicBatchCommand
{
    public static Command Create()
    {
        var input = new Argument<string>("input") { Description = "The ONNX file with a fixed batch size." };
        var output = new Argument<string>("output") { Description = "The ONNX file to write (replaced if it exists)." };
        var symbol = new Option<string>("--symbol")
        {
            Description = "The name of the dynamic batch dimension.",
            DefaultValueFactory = _ => BatchDimension.DefaultSymbol,
        };

        var command = new Command("dynamic-batch", "Make a model's fixed batch dimension dynamic (inputs, outputs, value infos, Reshape shapes).")
        {
            input, output, symbol,
        };
        command.SetAction(parsed =>
        {
            var original = OnnxModel.Load(parsed.GetRequiredValue(input));
            var result = new OnnxModel(BatchDimension.MakeDynamic(original.Proto, parsed.GetRequiredValue(symbol)));
            var target = parsed.GetRequiredValue(output);
            result.Save(target);
            parsed.InvocationConfiguration.Output.WriteLine(
                $"Wrote {target}: inputs {string.Join(", ", result.Inputs.Select(value => $"{value.Name} {value.ShapeText}"))}; " +
                $"outputs {string.Join(", ", result.Outputs.Select(value => $"{value.Name} {value.ShapeText}"))}.");
            return ExitCodes.Success;
        });
        return command;
    }
}
