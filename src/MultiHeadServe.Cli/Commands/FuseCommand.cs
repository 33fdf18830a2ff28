using System.CommandLine;
using MultiHeadServe.Onnx;

namespace MultiHeadServe.Cli.Commands;

/// <summary>
/// <c>mhs fuse &lt;out.onnx&gt; &lt;member.onnx&gt;... [--prefix a,b,c] [--dedupe]</c>: several models over the same inputs
/// become one multi-head model.
/// </summary>
internal static class FuseCommand
{
    public static Command Create()
    {
        var output = new Argument<string>("output") { Description = "The fused ONNX file to write (replaced if it exists)." };
        var members = new Argument<string[]>("members")
        {
            Description = "The ONNX files to fuse. They must have the same graph inputs.",
            Arity = ArgumentArity.OneOrMore,
        };
        var prefixes = new Option<string[]>("--prefix")
        {
            Description = "Comma-separated prefixes for the members' internal names, one per member, in order. " +
                          "Default: each file's name without extension.",
        };
        var renames = new Option<string[]>("--rename")
        {
            Description = "Give a member's output another name in the fused model: <prefix>:<output>=<new name>. Repeatable.",
        };
        var allowOpsetMismatch = new Option<bool>("--allow-opset-mismatch")
        {
            Description = "When members import different versions of an operator set, use the highest instead of failing.",
        };
        var deduplicate = new Option<bool>("--dedupe-initializers")
        {
            Description = "Store byte-identical weights shared by several members once.",
        };

        var dedupe = new Option<bool>("--dedupe")
        {
            Description = "Compute identical work once: nodes with the same operator, attributes and inputs (e.g. a backbone every " +
                          "member embeds) are merged, and identical weights stored once.",
        };

        var command = new Command("fuse", "Fuse models over the same inputs into one model that returns every member's outputs.")
        {
            output, members, prefixes, renames, allowOpsetMismatch, deduplicate, dedupe,
        };
        command.SetAction(parsed =>
        {
            var paths = parsed.GetRequiredValue(members);
            var names = Prefixes(paths, CommandLineHost.SplitList(parsed.GetValue(prefixes)));
            var options = new FuseOptions
            {
                OutputNames = OutputNames(parsed.GetValue(renames) ?? []),
                AllowOpsetVersionMismatch = parsed.GetValue(allowOpsetMismatch),
                DeduplicateInitializers = parsed.GetValue(deduplicate),
                DeduplicateComputation = parsed.GetValue(dedupe),
            };

            var loaded = paths.Select((path, i) => (names[i], OnnxModel.Load(path).Proto)).ToList();
            var fused = new OnnxModel(ModelFusion.Fuse(loaded, options));
            var target = parsed.GetRequiredValue(output);
            fused.Save(target);

            var input = string.Join(", ", fused.Inputs.Select(value => $"{value.Name} {value.ShapeText}"));
            parsed.InvocationConfiguration.Output.WriteLine(
                $"Fused {paths.Length} models ({string.Join(", ", names)}) into {target}: inputs {input}; " +
                $"outputs {string.Join(", ", fused.Outputs.Select(value => value.Name))}; " +
                $"{fused.NodeCount} nodes, {fused.InitializerCount} initializers ({ByteSize.Format(fused.InitializerBytes)}).");
            return ExitCodes.Success;
        });
        return command;
    }

    private static List<string> Prefixes(string[] paths, List<string> given)
    {
        if (given.Count == 0)
        {
            var defaults = paths.Select(Path.GetFileNameWithoutExtension).Select(name => name ?? string.Empty).ToList();
            if (defaults.Distinct(StringComparer.Ordinal).Count() != defaults.Count)
            {
                throw new UsageException(
                    $"Members' file names give the same prefix twice ({string.Join(", ", defaults)}); name them with --prefix.");
            }

            return defaults;
        }

        if (given.Count != paths.Length)
        {
            throw new UsageException($"--prefix gives {given.Count} prefixes for {paths.Length} members; give one per member.");
        }

        return given;
    }

    private static Dictionary<MemberOutput, string> OutputNames(string[] renames)
    {
        var names = new Dictionary<MemberOutput, string>();
        foreach (var rename in renames)
        {
            var colon = rename.IndexOf(':', StringComparison.Ordinal);
            var equals = rename.LastIndexOf('=');
            if (colon <= 0 || equals <= colon + 1 || equals == rename.Length - 1)
            {
                throw new UsageException($"--rename '{rename}' is not of the form <prefix>:<output>=<new name>.");
            }

            var key = new MemberOutput(rename[..colon], rename[(colon + 1)..equals]);
            if (!names.TryAdd(key, rename[(equals + 1)..]))
            {
                throw new UsageException($"--rename gives output '{key.Output}' of member '{key.Member}' two names.");
            }
        }

        return names;
    }
}
