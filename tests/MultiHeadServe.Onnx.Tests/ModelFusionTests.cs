using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx.Tests;

public sealed class ModelFusionTests
{
    [Fact]
    public void FusedRankingModelTakesOneFeatureInputAndReturnsEveryHead()
    {
        var fused = new OnnxModel(ModelFusion.Fuse(RankingMembers.All()));

        var input = Assert.Single(fused.Inputs);
        Assert.Equal("features", input.Name);
        Assert.Equal("[batch, 6]", input.ShapeText);
        Assert.Equal(["click_logit", "dwell", "revenue"], fused.Outputs.Select(output => output.Name));
        Assert.All(fused.Outputs, output => Assert.Equal("tensor(float32)", output.Type));
        Assert.Equal(5 + 5 + 6, fused.NodeCount);
        Assert.Equal(4 + 4 + 5, fused.InitializerCount);
        GraphAssertions.WellFormed(fused.Proto.Graph);
    }

    [Fact]
    public void EveryInternalNameCarriesItsMemberPrefix()
    {
        var graph = ModelFusion.Fuse(RankingMembers.All()).Graph;
        var interface_ = new HashSet<string>(["features", "click_logit", "dwell", "revenue"]);

        var internalNames = graph.Node.Select(node => node.Name)
            .Concat(graph.Node.SelectMany(node => node.Input.Concat(node.Output)))
            .Concat(graph.Initializer.Select(tensor => tensor.Name))
            .Concat(graph.ValueInfo.Select(info => info.Name))
            .Where(name => !interface_.Contains(name))
            .ToList();

        Assert.NotEmpty(internalNames);
        Assert.All(internalNames, name => Assert.Matches("^(click|dwell|revenue)/", name));
        Assert.Contains("click/fc1.weight", internalNames);
        Assert.Contains("dwell/fc1.weight", internalNames);
        Assert.Contains("revenue//Gather_output_0", internalNames);
        Assert.Contains("click//Relu_output_0", graph.ValueInfo.Select(info => info.Name));
    }

    [Fact]
    public void EachMemberStillReadsItsOwnWeightsAndTheSharedInput()
    {
        var graph = ModelFusion.Fuse(RankingMembers.All()).Graph;

        var clickFirstLayer = graph.Node.Single(node => node.Name == "click//fc1/MatMul");
        Assert.Equal(["features", "click/fc1.weight"], clickFirstLayer.Input);
        var dwellHead = graph.Node.Single(node => node.Name == "dwell//fc2/Add");
        Assert.Equal(["dwell//fc2/MatMul_output_0", "dwell/fc2.bias"], dwellHead.Input);
        Assert.Equal(["dwell"], dwellHead.Output);
        var gather = graph.Node.Single(node => node.OpType == "Gather");
        Assert.Equal(["features", "revenue/columns"], gather.Input);
    }

    [Fact]
    public void FusionLeavesTheMembersUnchanged()
    {
        var members = RankingMembers.All();
        var before = members.Select(member => member.Model.Clone()).ToList();

        ModelFusion.Fuse(members, new FuseOptions { DeduplicateInitializers = true });

        Assert.Equal(before, members.Select(member => member.Model));
    }

    [Fact]
    public void FusedModelRecordsProducerVersionsAndProvenance()
    {
        var click = RankingMembers.Click();
        click.IrVersion = 7;
        var dwell = RankingMembers.Dwell();
        dwell.IrVersion = 9;

        var fused = new OnnxModel(ModelFusion.Fuse([("click", click), ("dwell", dwell)]));

        Assert.Equal(9, fused.IrVersion);
        Assert.StartsWith("MultiHeadServe", fused.Producer, StringComparison.Ordinal);
        Assert.Equal(new OpsetImport(string.Empty, 17), Assert.Single(fused.OpsetImports));
        Assert.Equal("click,dwell", fused.Metadata[ModelFusion.MembersMetadataKey]);
        Assert.Equal("pytorch 1.0", fused.Metadata["multiheadserve.member.click.producer"]);
        Assert.Equal("7", fused.Metadata["multiheadserve.member.click.ir_version"]);
        Assert.Equal("ai.onnx:17", fused.Metadata["multiheadserve.member.dwell.opsets"]);
        Assert.Equal("dwell", fused.Metadata["multiheadserve.member.dwell.outputs"]);
        Assert.Equal("2024-05", fused.Metadata["click/trained_on"]);
        Assert.Equal("2024-05", fused.Metadata["dwell/trained_on"]);
        Assert.Equal("click+dwell", fused.Proto.Graph.Name);
    }

    [Fact]
    public void MemberMissingASharedInputIsRejectedByName()
    {
        var dwell = RankingMembers.Dwell();
        dwell.Graph.Input[0].Name = "columns";

        var error = Assert.Throws<OnnxModelException>(() => ModelFusion.Fuse([("click", RankingMembers.Click()), ("dwell", dwell)]));

        Assert.Contains("'dwell'", error.Message, StringComparison.Ordinal);
        Assert.Contains("'features'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MemberWithAnExtraInputIsRejectedByName()
    {
        var revenue = RankingMembers.Revenue();
        revenue.Graph.Input.Add(ModelBuilder.Value("user_segment", TensorElementType.Int64, "batch"));

        var error = Assert.Throws<OnnxModelException>(() => ModelFusion.Fuse([("click", RankingMembers.Click()), ("revenue", revenue)]));

        Assert.Contains("Member 'revenue' has graph input 'user_segment'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void InputsOfDifferentElementTypesAreRejected()
    {
        var dwell = RankingMembers.Dwell();
        dwell.Graph.Input[0].Type.TensorType.ElemType = (int)TensorElementType.Float64;

        var error = Assert.Throws<OnnxModelException>(() => ModelFusion.Fuse([("click", RankingMembers.Click()), ("dwell", dwell)]));

        Assert.Equal(
            "Graph input 'features' is tensor(float32) in member 'click' but tensor(float64) in member 'dwell'. " +
            "Fused members must share the same graph inputs.",
            error.Message);
    }

    [Fact]
    public void InputsWithDifferentColumnCountsAreRejected()
    {
        var dwell = RankingMembers.Dwell();
        dwell.Graph.Input[0].Type.TensorType.Shape.Dim[1].DimValue = 7;

        var error = Assert.Throws<OnnxModelException>(() => ModelFusion.Fuse([("click", RankingMembers.Click()), ("dwell", dwell)]));

        Assert.Contains("[batch, 6] in member 'click' but [batch, 7] in member 'dwell': dimension 1 differs", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void InputsOfDifferentRankAreRejected()
    {
        var dwell = RankingMembers.Dwell();
        dwell.Graph.Input[0].Type.TensorType.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = 1 });

        var error = Assert.Throws<OnnxModelException>(() => ModelFusion.Fuse([("click", RankingMembers.Click()), ("dwell", dwell)]));

        Assert.Contains("the ranks differ (2 and 3)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CompatibleShapesMergeToTheMostSpecific()
    {
        var click = RankingMembers.Click();
        click.Graph.Input[0].Type.TensorType.Shape.Dim[1].ClearValue();
        var dwell = RankingMembers.Dwell();
        dwell.Graph.Input[0].Type.TensorType.Shape.Dim[0].DimParam = "N";

        var fused = new OnnxModel(ModelFusion.Fuse([("click", click), ("dwell", dwell)]));

        // The unknown column count takes dwell's 6; two symbols are compatible and the first is kept.
        Assert.Equal("[batch, 6]", Assert.Single(fused.Inputs).ShapeText);
    }

    [Fact]
    public void MembersWithTheSameOutputNameAreRejectedNamingBoth()
    {
        var error = Assert.Throws<OnnxModelException>(() =>
            ModelFusion.Fuse([("click_v1", RankingMembers.Click()), ("click_v2", RankingMembers.Click())]));

        Assert.Contains("Output 'click_logit' is produced by member 'click_v1' and by member 'click_v2'", error.Message, StringComparison.Ordinal);
        Assert.Contains("FuseOptions.OutputNames", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OutputNamesRenameCollidingOutputsAtTheirSource()
    {
        var options = new FuseOptions
        {
            OutputNames = new Dictionary<MemberOutput, string>
            {
                [new MemberOutput("click_v1", "click_logit")] = "click_logit_v1",
                [new MemberOutput("click_v2", "click_logit")] = "click_logit_v2",
            },
        };

        var fused = ModelFusion.Fuse([("click_v1", RankingMembers.Click()), ("click_v2", RankingMembers.Click())], options);

        Assert.Equal(["click_logit_v1", "click_logit_v2"], fused.Graph.Output.Select(output => output.Name));
        Assert.DoesNotContain(fused.Graph.Node, node => node.OpType == "Identity");
        Assert.Equal(["click_logit_v2"], fused.Graph.Node.Single(node => node.Name == "click_v2//fc2/Add").Output);
        Assert.Equal("click_logit=click_logit_v1", fused.MetadataProps.Single(entry => entry.Key == "multiheadserve.member.click_v1.outputs").Value);
        GraphAssertions.WellFormed(fused.Graph);
    }

    [Fact]
    public void RenamingAnOutputThatIsNotComputedByANodeAddsAnIdentity()
    {
        // A member that passes its input through and returns one of its weights as a constant output.
        var echo = new ModelBuilder()
            .Input("features", TensorElementType.Float32, "batch", 6)
            .Output("features", TensorElementType.Float32, "batch", 6)
            .Output("scale", TensorElementType.Float32, 1)
            .Weights("scale", [1])
            .Build();
        var options = new FuseOptions
        {
            OutputNames = new Dictionary<MemberOutput, string> { [new MemberOutput("echo", "features")] = "echoed" },
        };

        var fused = ModelFusion.Fuse([("click", RankingMembers.Click()), ("echo", echo)], options);

        Assert.Equal(["click_logit", "echoed", "scale"], fused.Graph.Output.Select(output => output.Name));
        var identities = fused.Graph.Node.Where(node => node.OpType == "Identity").ToList();
        Assert.Equal(2, identities.Count);
        Assert.Equal(["features"], identities[0].Input);
        Assert.Equal(["echoed"], identities[0].Output);
        Assert.Equal(["echo/scale"], identities[1].Input);
        Assert.Equal(["scale"], identities[1].Output);
        GraphAssertions.WellFormed(fused.Graph);
    }

    [Fact]
    public void RenamingAnOutputOntoTheSharedInputIsRejected()
    {
        var options = new FuseOptions
        {
            OutputNames = new Dictionary<MemberOutput, string> { [new MemberOutput("dwell", "dwell")] = "features" },
        };

        var error = Assert.Throws<OnnxModelException>(() =>
            ModelFusion.Fuse([("click", RankingMembers.Click()), ("dwell", RankingMembers.Dwell())], options));

        Assert.Contains("define value 'features' twice", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RenamingAnOutputThatDoesNotExistIsRejected()
    {
        var options = new FuseOptions
        {
            OutputNames = new Dictionary<MemberOutput, string> { [new MemberOutput("dwell", "dwell_seconds")] = "x" },
        };

        var error = Assert.Throws<OnnxModelException>(() =>
            ModelFusion.Fuse([("click", RankingMembers.Click()), ("dwell", RankingMembers.Dwell())], options));

        Assert.Contains("output 'dwell_seconds' of member 'dwell'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DifferentOpsetVersionsAreRejectedUnlessAllowed()
    {
        var click = RankingMembers.Click();
        click.Graph.Node.Add(new NodeProto { OpType = "Softmax", Name = "/Softmax", Input = { "features" }, Output = { "/Softmax_output_0" } });
        var dwell = RankingMembers.Dwell();
        dwell.OpsetImport[0].Version = 18;
        IReadOnlyList<(string, ModelProto)> members = [("click", click), ("dwell", dwell)];

        var error = Assert.Throws<OnnxModelException>(() => ModelFusion.Fuse(members));
        var fused = ModelFusion.Fuse(members, new FuseOptions { AllowOpsetVersionMismatch = true });

        Assert.Contains("Members 'click' and 'dwell' import different versions of operator set 'ai.onnx' (17 and 18)", error.Message, StringComparison.Ordinal);
        Assert.Equal(18, Assert.Single(fused.OpsetImport).Version);
        Assert.Contains("operator Softmax (node '/Softmax') is not known to keep its meaning between versions 17 and 18", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DifferentOpsetVersionsAreUpgradedWhenEveryOperatorKeepsItsMeaning()
    {
        var dwell = RankingMembers.Dwell();
        dwell.OpsetImport[0].Version = 18;

        var fused = ModelFusion.Fuse([("click", RankingMembers.Click()), ("dwell", dwell)]);

        Assert.Equal(18, Assert.Single(fused.OpsetImport).Version);
        Assert.Equal("ai.onnx:17", fused.MetadataProps.Single(entry => entry.Key == "multiheadserve.member.click.opsets").Value);
    }

    [Fact]
    public void OpsetImportsAreMergedAcrossDomainsAndSpellingsOfTheDefaultDomain()
    {
        var click = RankingMembers.Click();
        click.OpsetImport[0].Domain = "ai.onnx";
        var dwell = new ModelBuilder()
            .Opset("com.microsoft", 1)
            .Input("features", TensorElementType.Float32, "batch", 6)
            .Output("dwell", TensorElementType.Float32, "batch", 6)
            .Node("Gelu", ["features"], ["dwell"])
            .Build();
        dwell.Graph.Node[0].Domain = "com.microsoft";

        var fused = ModelFusion.Fuse([("click", click), ("dwell", dwell)]);

        Assert.Equal(
            [(string.Empty, 17L), ("com.microsoft", 1L)],
            fused.OpsetImport.Select(opset => (opset.Domain, opset.Version)));
    }

    [Fact]
    public void SubgraphsArePrefixedAndKeepReadingTheirEnclosingValues()
    {
        // if (gate) { y = relu(hidden) + features_bias } else { y = hidden }: the branches read 'hidden' from
        // the enclosing graph and 'features' from the shared inputs, and define values of their own.
        var thenBranch = new GraphProto { Name = "then" };
        thenBranch.Initializer.Add(ModelBuilder.FloatTensor("bias", [1], [0.5f]));
        thenBranch.Node.Add(Node("Relu", ["hidden"], ["positive"], "relu"));
        thenBranch.Node.Add(Node("ReduceSum", ["features"], ["total"], "sum"));
        thenBranch.Node.Add(Node("Add", ["positive", "bias"], ["branch_out"], "add"));
        thenBranch.Output.Add(ModelBuilder.Value("branch_out", TensorElementType.Float32, "batch", 1));
        var elseBranch = new GraphProto { Name = "else" };
        elseBranch.Output.Add(ModelBuilder.Value("hidden", TensorElementType.Float32, "batch", 1));

        var gated = new ModelBuilder()
            .Input("features", TensorElementType.Float32, "batch", 6)
            .Output("gated", TensorElementType.Float32, "batch", 1)
            .Weights("w", [6, 1])
            .Weights("threshold", [1])
            .Node("MatMul", ["features", "w"], ["hidden"], "matmul")
            .Node("ReduceMax", ["hidden"], ["peak"], "max")
            .Node("Greater", ["peak", "threshold"], ["gate"], "greater")
            .Node("If", ["gate"], ["gated"], "if",
                ModelBuilder.GraphAttribute("then_branch", thenBranch),
                ModelBuilder.GraphAttribute("else_branch", elseBranch))
            .Build();

        var fused = ModelFusion.Fuse([("click", RankingMembers.Click()), ("gated", gated)]).Graph;

        var ifNode = fused.Node.Single(node => node.OpType == "If");
        Assert.Equal("gated/if", ifNode.Name);
        Assert.Equal(["gated/gate"], ifNode.Input);
        var fusedThen = ifNode.Attribute.Single(attribute => attribute.Name == "then_branch").G;
        Assert.Equal("gated/then", fusedThen.Name);
        Assert.Equal(["gated/relu", "gated/sum", "gated/add"], fusedThen.Node.Select(node => node.Name));
        Assert.Equal(["gated/hidden"], fusedThen.Node[0].Input);
        Assert.Equal(["features"], fusedThen.Node[1].Input);
        Assert.Equal(["gated/positive", "gated/bias"], fusedThen.Node[2].Input);
        Assert.Equal("gated/bias", Assert.Single(fusedThen.Initializer).Name);
        Assert.Equal("gated/branch_out", Assert.Single(fusedThen.Output).Name);
        Assert.Equal("gated/hidden", Assert.Single(ifNode.Attribute.Single(attribute => attribute.Name == "else_branch").G.Output).Name);
        GraphAssertions.WellFormed(fused);
    }

    [Fact]
    public void SparseInitializersAndQuantizationAnnotationsArePrefixed()
    {
        var member = RankingMembers.Dwell();
        var values = ModelBuilder.FloatTensor("mask", [1], [1f]);
        var indices = new TensorProto { DataType = (int)TensorElementType.Int64 };
        indices.Dims.Add(1);
        indices.Int64Data.Add(3);
        var sparse = new SparseTensorProto { Values = values, Indices = indices };
        sparse.Dims.Add(6);
        member.Graph.SparseInitializer.Add(sparse);
        var annotation = new TensorAnnotation { TensorName = "fc1.weight" };
        annotation.QuantParameterTensorNames.Add(new StringStringEntryProto { Key = "SCALE_TENSOR", Value = "fc1.bias" });
        member.Graph.QuantizationAnnotation.Add(annotation);

        var fused = ModelFusion.Fuse([("click", RankingMembers.Click()), ("dwell", member)]).Graph;

        Assert.Equal("dwell/mask", Assert.Single(fused.SparseInitializer).Values.Name);
        var fusedAnnotation = Assert.Single(fused.QuantizationAnnotation);
        Assert.Equal("dwell/fc1.weight", fusedAnnotation.TensorName);
        Assert.Equal("dwell/fc1.bias", fusedAnnotation.QuantParameterTensorNames[0].Value);
    }

    [Fact]
    public void WeightsListedAsInputsStayMemberInputsUnderThePrefix()
    {
        var legacy = new ModelBuilder(irVersion: 3)
            .Input("features", TensorElementType.Float32, "batch", 6)
            .Input("weight", TensorElementType.Float32, 6, 1)
            .Output("legacy", TensorElementType.Float32, "batch", 1)
            .Weights("weight", [6, 1])
            .Node("MatMul", ["features", "weight"], ["legacy"])
            .Build();

        var fused = new OnnxModel(ModelFusion.Fuse([("click", RankingMembers.Click()), ("legacy", legacy)]));

        Assert.Equal(["features", "legacy/weight"], fused.Proto.Graph.Input.Select(input => input.Name));
        Assert.Equal(["features"], fused.Inputs.Select(input => input.Name));
        GraphAssertions.WellFormed(fused.Proto.Graph);
    }

    [Fact]
    public void IdenticalWeightsAreStoredOnceWhenDeduplicating()
    {
        var plain = new OnnxModel(ModelFusion.Fuse(RankingMembers.All()));
        var deduplicated = new OnnxModel(ModelFusion.Fuse(RankingMembers.All(), new FuseOptions { DeduplicateInitializers = true }));

        // fc1.bias [4] and fc2.bias [1] are the same in all three members.
        Assert.Equal(plain.InitializerCount - 4, deduplicated.InitializerCount);
        Assert.DoesNotContain(deduplicated.Proto.Graph.Initializer, tensor => tensor.Name is "dwell/fc1.bias" or "revenue/fc2.bias");
        Assert.Equal(["dwell//fc2/MatMul_output_0", "click/fc2.bias"], deduplicated.Proto.Graph.Node.Single(node => node.Name == "dwell//fc2/Add").Input);
        Assert.Contains("dwell/fc1.weight", deduplicated.Proto.Graph.Initializer.Select(tensor => tensor.Name));
        GraphAssertions.WellFormed(deduplicated.Proto.Graph);
    }

    [Fact]
    public void IdenticalLocalFunctionsAreSharedAndConflictingOnesRejected()
    {
        static FunctionProto Function(string op)
        {
            var function = new FunctionProto { Name = "Activation", Domain = "custom" };
            function.Input.Add("x");
            function.Output.Add("y");
            function.Node.Add(Node(op, ["x"], ["y"], "body"));
            return function;
        }

        var click = RankingMembers.Click();
        click.Functions.Add(Function("Relu"));
        var dwell = RankingMembers.Dwell();
        dwell.Functions.Add(Function("Relu"));
        var revenue = RankingMembers.Revenue();
        revenue.Functions.Add(Function("Sigmoid"));

        var fused = ModelFusion.Fuse([("click", click), ("dwell", dwell)]);
        var error = Assert.Throws<OnnxModelException>(() => ModelFusion.Fuse([("click", click), ("revenue", revenue)]));

        Assert.Equal(["x"], Assert.Single(fused.Functions).Node[0].Input);
        Assert.Contains("'custom.Activation'", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("click", "click", "prefix 'click'")]
    [InlineData("click", "dw/ell", "separator '/'")]
    [InlineData("click", " ", "non-empty prefix")]
    public void InvalidPrefixesAreRejected(string first, string second, string expected)
    {
        var error = Assert.Throws<ArgumentException>(() =>
            ModelFusion.Fuse([(first, RankingMembers.Click()), (second, RankingMembers.Dwell())]));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FusingNothingIsRejected() =>
        Assert.Throws<ArgumentException>(() => ModelFusion.Fuse([]));

    [Fact]
    public void FusedModelSurvivesSerializationAndPrunesBackToOneMember()
    {
        var bytes = new OnnxModel(ModelFusion.Fuse(RankingMembers.All())).ToBytes();

        var dwellOnly = new OnnxModel(ModelPruning.Prune(OnnxModel.FromBytes(bytes).Proto, ["dwell"]));

        var dwell = new OnnxModel(RankingMembers.Dwell());
        Assert.Equal(dwell.NodeCount, dwellOnly.NodeCount);
        Assert.Equal(dwell.InitializerCount, dwellOnly.InitializerCount);
        Assert.Equal(dwell.InitializerBytes, dwellOnly.InitializerBytes);
        Assert.Equal(["features"], dwellOnly.Inputs.Select(input => input.Name));
        Assert.All(dwellOnly.Proto.Graph.Node, node => Assert.StartsWith("dwell/", node.Name, StringComparison.Ordinal));
    }

    private static NodeProto Node(string opType, string[] inputs, string[] outputs, string name)
    {
        var node = new NodeProto { OpType = opType, Name = name };
        node.Input.Add(inputs);
        node.Output.Add(outputs);
        return node;
    }
}
