using System.Text.Json;
using MultiHeadServe.Cli;

namespace MultiHeadServe.Onnx.Tests;

/// <summary>The <c>mhs</c> commands, run in-process on model files in a temporary folder.</summary>
public sealed class MhsCommandLineTests : IDisposable
{
    private readonly DirectoryInfo folder = Directory.CreateTempSubdirectory("mhs-cli-tests-");

    public MhsCommandLineTests()
    {
        new OnnxModel(RankingMembers.Click()).Save(PathOf("click.onnx"));
        new OnnxModel(RankingMembers.Dwell()).Save(PathOf("dwell.onnx"));
        new OnnxModel(RankingMembers.Revenue()).Save(PathOf("revenue.onnx"));
    }

    public void Dispose() => folder.Delete(recursive: true);

    [Fact]
    public void InspectPrintsInputsOutputsOpsetsAndSizes()
    {
        var (code, output, _) = Run("inspect", PathOf("revenue.onnx"));

        Assert.Equal(ExitCodes.Success, code);
        Assert.Matches(@"features\s+tensor\(float32\)\s+\[batch, 6\]", output);
        Assert.Matches(@"revenue\s+tensor\(float32\)\s+\[batch, 1\]", output);
        Assert.Matches(@"opsets\s+ai\.onnx 17", output);
        Assert.Matches(@"initializers\s+5 \(108 B\)", output);
    }

    [Fact]
    public void InspectJsonDescribesShapesWithNumbersAndSymbols()
    {
        var (code, output, _) = Run("inspect", PathOf("click.onnx"), "--json");

        Assert.Equal(ExitCodes.Success, code);
        using var json = JsonDocument.Parse(output);
        var input = json.RootElement.GetProperty("inputs")[0];
        Assert.Equal("features", input.GetProperty("name").GetString());
        Assert.Equal("float32", input.GetProperty("elementType").GetString());
        Assert.Equal("batch", input.GetProperty("shape")[0].GetString());
        Assert.Equal(6, input.GetProperty("shape")[1].GetInt32());
        Assert.Equal("click_logit", json.RootElement.GetProperty("outputs")[0].GetProperty("name").GetString());
        Assert.Equal(17, json.RootElement.GetProperty("opsets")[0].GetProperty("version").GetInt32());
        Assert.Equal(5, json.RootElement.GetProperty("nodeCount").GetInt32());
        Assert.Equal("2024-05", json.RootElement.GetProperty("metadata").GetProperty("trained_on").GetString());
    }

    [Fact]
    public void FuseWritesOneModelPrefixedByFileNames()
    {
        var (code, output, _) = Run("fuse", PathOf("ranking.onnx"), PathOf("click.onnx"), PathOf("dwell.onnx"), PathOf("revenue.onnx"));

        Assert.Equal(ExitCodes.Success, code);
        Assert.Contains("outputs click_logit, dwell, revenue", output, StringComparison.Ordinal);
        var fused = OnnxModel.Load(PathOf("ranking.onnx"));
        Assert.Equal(["features"], fused.Inputs.Select(input => input.Name));
        Assert.Equal(["click_logit", "dwell", "revenue"], fused.Outputs.Select(value => value.Name));
        Assert.Equal("click,dwell,revenue", fused.Metadata[ModelFusion.MembersMetadataKey]);
        Assert.Contains("revenue/fc1.weight", fused.Proto.Graph.Initializer.Select(tensor => tensor.Name));
    }

    [Fact]
    public void FuseTakesPrefixesRenamesAndDeduplication()
    {
        var (code, _, error) = Run(
            "fuse", PathOf("clicks.onnx"), PathOf("click.onnx"), PathOf("click.onnx"),
            "--prefix", "ctr_a,ctr_b", "--rename", "ctr_a:click_logit=ctr_a", "--rename", "ctr_b:click_logit=ctr_b",
            "--dedupe-initializers");

        Assert.Equal(string.Empty, error);
        Assert.Equal(ExitCodes.Success, code);
        var fused = OnnxModel.Load(PathOf("clicks.onnx"));
        Assert.Equal(["ctr_a", "ctr_b"], fused.Outputs.Select(value => value.Name));
        // The two copies of one model share every weight.
        Assert.Equal(new OnnxModel(RankingMembers.Click()).InitializerCount, fused.InitializerCount);
    }

    [Fact]
    public void PruneKeepsTheNamedOutputsAndReportsWhatWasCut()
    {
        Run("fuse", PathOf("ranking.onnx"), PathOf("click.onnx"), PathOf("dwell.onnx"), PathOf("revenue.onnx"));

        var (code, output, _) = Run("prune", PathOf("ranking.onnx"), PathOf("click.pruned.onnx"), "--keep", "click_logit");

        Assert.Equal(ExitCodes.Success, code);
        Assert.Contains("5 of 16 nodes, 4 of 13 initializers", output, StringComparison.Ordinal);
        Assert.Equal(["click_logit"], OnnxModel.Load(PathOf("click.pruned.onnx")).Outputs.Select(value => value.Name));
    }

    [Fact]
    public void PruneLeavesOnlyTheKeptMembersInTheMetadata()
    {
        Run("fuse", PathOf("ranking.onnx"), PathOf("click.onnx"), PathOf("dwell.onnx"), PathOf("revenue.onnx"));
        var fused = OnnxModel.Load(PathOf("ranking.onnx")).Metadata;
        Assert.Contains("multiheadserve.member.dwell.outputs", fused.Keys);

        var (code, _, _) = Run("prune", PathOf("ranking.onnx"), PathOf("click.pruned.onnx"), "--keep", "click_logit");

        Assert.Equal(ExitCodes.Success, code);
        var metadata = OnnxModel.Load(PathOf("click.pruned.onnx")).Metadata;
        Assert.Equal("click", metadata[ModelFusion.MembersMetadataKey]);
        Assert.Equal(fused["multiheadserve.member.click.outputs"], metadata["multiheadserve.member.click.outputs"]);
        Assert.DoesNotContain(metadata.Keys, key => key.Contains(".dwell.", StringComparison.Ordinal) || key.Contains(".revenue.", StringComparison.Ordinal) ||
            key.StartsWith("dwell/", StringComparison.Ordinal) || key.StartsWith("revenue/", StringComparison.Ordinal));

        // Keeping everything keeps the metadata as it was.
        Run("prune", PathOf("ranking.onnx"), PathOf("all.pruned.onnx"), "--keep", string.Join(',', OnnxModel.Load(PathOf("ranking.onnx")).Outputs.Select(o => o.Name)));
        Assert.Equal(fused, OnnxModel.Load(PathOf("all.pruned.onnx")).Metadata);
    }

    [Fact]
    public void ComposeConnectsAnIntermediateValueAndMakesTheBatchDynamic()
    {
        new OnnxModel(SmallVisionModels.Backbone()).Save(PathOf("backbone.onnx"));
        new OnnxModel(SmallVisionModels.BoxHead()).Save(PathOf("box.onnx"));

        var (code, output, error) = Run(
            "compose", PathOf("member.onnx"), PathOf("backbone.onnx"), PathOf("box.onnx"),
            "--map", "feature_map=feature_map", "--backbone-outputs", "None", "--dynamic-batch");

        Assert.Equal(string.Empty, error);
        Assert.Equal(ExitCodes.Success, code);
        Assert.Contains("inputs image [batch, 3, 8, 8]; outputs bbox [batch, 4]; opsets ai.onnx 17", output, StringComparison.Ordinal);
        var member = OnnxModel.Load(PathOf("member.onnx"));
        Assert.DoesNotContain(member.Proto.Graph.Node, node => node.OpType == "AveragePool");
    }

    [Fact]
    public void DynamicBatchRewritesTheFixedBatch()
    {
        new OnnxModel(SmallVisionModels.Backbone()).Save(PathOf("backbone.onnx"));

        var (code, output, _) = Run("dynamic-batch", PathOf("backbone.onnx"), PathOf("dynamic.onnx"), "--symbol", "n");

        Assert.Equal(ExitCodes.Success, code);
        Assert.Contains("inputs image [n, 3, 8, 8]; outputs features [n, 4, 1, 1]", output, StringComparison.Ordinal);
    }

    [Fact]
    public void FuseDedupeComputesTheSharedBackboneOnce()
    {
        new OnnxModel(SmallVisionModels.Backbone()).Save(PathOf("backbone.onnx"));
        new OnnxModel(SmallVisionModels.ClassifierHead("logits_a", 0.1f)).Save(PathOf("head_a.onnx"));
        new OnnxModel(SmallVisionModels.ClassifierHead("logits_b", 0.2f)).Save(PathOf("head_b.onnx"));
        Assert.Equal(string.Empty, Run("compose", PathOf("a.onnx"), PathOf("backbone.onnx"), PathOf("head_a.onnx"), "--dynamic-batch").Error);
        Assert.Equal(string.Empty, Run("compose", PathOf("b.onnx"), PathOf("backbone.onnx"), PathOf("head_b.onnx"), "--dynamic-batch").Error);

        var (code, _, error) = Run("fuse", PathOf("ab.onnx"), PathOf("a.onnx"), PathOf("b.onnx"), "--dedupe");

        Assert.Equal(string.Empty, error);

        Assert.Equal(ExitCodes.Success, code);
        Assert.Single(OnnxModel.Load(PathOf("ab.onnx")).Proto.Graph.Node, node => node.OpType == "Conv");
    }

    [Theory]
    [InlineData(new string[0], "Required command was not provided.")]
    [InlineData(new[] { "frobnicate" }, "Unrecognized command or argument 'frobnicate'.")]
    [InlineData(new[] { "prune", "in.onnx", "out.onnx" }, "Option '--keep' is required.")]
    [InlineData(new[] { "fuse", "out.onnx" }, "Run 'mhs fuse --help' for usage.")]
    [InlineData(new[] { "models", "list", "--url", "not-an-address" }, "Run 'mhs models list --help' for usage.")]
    [InlineData(new[] { "features", "import" }, "Run 'mhs features import --help' for usage.")]
    [InlineData(new[] { "fuse", "out.onnx", "a/click.onnx", "b/click.onnx" }, "name them with --prefix")]
    [InlineData(new[] { "fuse", "out.onnx", "click.onnx", "--prefix", "a,b" }, "--prefix gives 2 prefixes for 1 members")]
    [InlineData(new[] { "fuse", "out.onnx", "click.onnx", "--rename", "click_logit=ctr" }, "is not of the form <prefix>:<output>=<new name>")]
    [InlineData(new[] { "compose", "out.onnx", "backbone.onnx", "head.onnx", "--map", "features" }, "--map 'features' is not of the form <backbone value>=<head input>")]
    public void UsageErrorsExitWithTwo(string[] args, string expected)
    {
        var (code, output, error) = Run(args);

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains(expected, error, StringComparison.Ordinal);
        Assert.Equal(string.Empty, output);
    }

    [Fact]
    public void FailuresExitWithOneAndSayWhy()
    {
        var missing = Run("inspect", PathOf("absent.onnx"));
        var unknownOutput = Run("prune", PathOf("click.onnx"), PathOf("out.onnx"), "--keep", "ctr");
        File.WriteAllText(PathOf("notes.onnx"), "not a model");
        var notAModel = Run("inspect", PathOf("notes.onnx"));
        var clash = Run("fuse", PathOf("out.onnx"), PathOf("click.onnx"), PathOf("click.onnx"), "--prefix", "a,b");
        var directory = Run("inspect", folder.FullName);

        Assert.All([missing, unknownOutput, notAModel, clash, directory], result => Assert.Equal(ExitCodes.Failure, result.Code));
        Assert.Contains("does not exist", missing.Error, StringComparison.Ordinal);
        Assert.Contains("is a directory; give the path of an .onnx file in it", directory.Error, StringComparison.Ordinal);
        Assert.Contains("does not parse as the ONNX protobuf format", notAModel.Error, StringComparison.Ordinal);
        Assert.Contains("absent.onnx", missing.Error, StringComparison.Ordinal);
        Assert.Contains("'ctr' is not an output of the model", unknownOutput.Error, StringComparison.Ordinal);
        Assert.Contains("is not an ONNX model", notAModel.Error, StringComparison.Ordinal);
        Assert.Contains("mhs fuse --rename", clash.Error, StringComparison.Ordinal);
        Assert.False(File.Exists(PathOf("out.onnx")));
    }

    private string PathOf(string name) => Path.Combine(folder.FullName, name);

    private static (int Code, string Output, string Error) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = CommandLineHost.Run(MhsCommand.Create(), args, output, error);
        return (code, output.ToString(), error.ToString());
    }
}
