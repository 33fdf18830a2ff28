using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using MultiHeadServe.Onnx;

namespace MultiHeadServe.Cli.Commands;

/// <summary><c>mhs inspect &lt;model.onnx&gt; [--json]</c>: what a model expects and returns, and how big it is.</summary>
internal static class InspectCommand
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "The ONNX file to inspect." };
        var json = new Option<bool>("--json") { Description = "Write JSON instead of a table." };
        var command = new Command("inspect", "Show a model's inputs, outputs, operator sets and size.") { model, json };
        command.SetAction(parsed =>
        {
            var path = parsed.GetRequiredValue(model);
            var loaded = OnnxModel.Load(path);
            var output = parsed.InvocationConfiguration.Output;
            if (parsed.GetValue(json))
            {
                output.WriteLine(ToJson(path, loaded).ToJsonString(Indented));
            }
            else
            {
                WriteTable(path, loaded, output);
            }

            return ExitCodes.Success;
        });
        return command;
    }

    private static void WriteTable(string path, OnnxModel model, TextWriter output)
    {
        output.WriteLine(path);
        new TextTable("IR version", model.IrVersion.ToString(System.Globalization.CultureInfo.InvariantCulture))
            .Add("producer", model.Producer.Length > 0 ? model.Producer : "-")
            .Add("opsets", string.Join(", ", model.OpsetImports.Select(opset => $"{opset.DisplayDomain} {opset.Version}")))
            .Add("nodes", model.NodeCount.ToString(System.Globalization.CultureInfo.InvariantCulture))
            .Add("initializers", $"{model.InitializerCount} ({ByteSize.Format(model.InitializerBytes)})")
            .WriteTo(output);

        foreach (var (title, values) in new[] { ("inputs", model.Inputs), ("outputs", model.Outputs) })
        {
            output.WriteLine();
            output.WriteLine(title);
            var table = new TextTable("name", "type", "shape");
            foreach (var value in values)
            {
                table.Add(value.Name, value.Type, value.ShapeText);
            }

            table.WriteTo(output);
        }

        if (model.Metadata.Count > 0)
        {
            output.WriteLine();
            output.WriteLine("metadata");
            var table = new TextTable("key", "value");
            foreach (var (key, value) in model.Metadata)
            {
                table.Add(key, value);
            }

            table.WriteTo(output);
        }
    }

    private static JsonObject ToJson(string path, OnnxModel model)
    {
        var metadata = new JsonObject();
        foreach (var (key, value) in model.Metadata)
        {
            metadata[key] = value;
        }

        return new JsonObject
        {
            ["path"] = path,
            ["irVersion"] = model.IrVersion,
            ["producer"] = model.Producer,
            ["opsets"] = new JsonArray(model.OpsetImports
                .Select(opset => (JsonNode)new JsonObject { ["domain"] = opset.DisplayDomain, ["version"] = opset.Version })
                .ToArray()),
            ["inputs"] = Values(model.Inputs),
            ["outputs"] = Values(model.Outputs),
            ["nodeCount"] = model.NodeCount,
            ["initializerCount"] = model.InitializerCount,
            ["initializerBytes"] = model.InitializerBytes,
            ["metadata"] = metadata,
        };
    }

    private static JsonArray Values(IReadOnlyList<ValueSignature> values) =>
        new(values.Select(value => (JsonNode)new JsonObject
        {
            ["name"] = value.Name,
            ["type"] = value.Type,
            ["elementType"] = value.ElementType == TensorElementType.Undefined ? null : value.ElementType.ToName(),
            // Fixed sizes are numbers, symbolic ones strings, unknown ones null; an unknown rank is null.
            ["shape"] = value.Shape is null
                ? null
                : new JsonArray(value.Shape.Select(dim => dim.Value is { } size ? JsonValue.Create(size) : (JsonNode?)JsonValue.Create(dim.Symbol)).ToArray()),
        }).ToArray());
}
