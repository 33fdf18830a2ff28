using Google.Protobuf.Reflection;

namespace MultiHeadServe.Api.Grpc;

/// <summary>
/// Triton's configuration and statistics messages from the REST answers, so both wires say the same: enum values are
/// found by the names REST writes (<c>TYPE_FP32</c>, <c>KIND_CPU</c>), which are the .proto's own.
/// </summary>
internal static class GrpcModelConfig
{
    private static readonly EnumDescriptor DataTypes = OpenInferenceReflection.Descriptor.FindTypeByName<EnumDescriptor>("DataType");

    public static ModelConfig From(V2ModelConfig rest)
    {
        var config = new ModelConfig
        {
            Name = rest.Name,
            Platform = rest.Platform,
            Backend = rest.Backend,
            MaxBatchSize = rest.MaxBatchSize,
            DefaultModelFilename = rest.DefaultModelFilename,
            VersionPolicy = new ModelVersionPolicy(),
        };
        if (rest.VersionPolicy.Latest is { } latest)
        {
            config.VersionPolicy.Latest = new ModelVersionPolicy.Types.Latest { NumVersions = (uint)latest.NumVersions };
        }
        else if (rest.VersionPolicy.Specific is { } specific)
        {
            config.VersionPolicy.Specific = new ModelVersionPolicy.Types.Specific { Versions = { specific.Versions.Select(v => (long)v) } };
        }
        else
        {
            config.VersionPolicy.All = new ModelVersionPolicy.Types.All();
        }

        config.Input.AddRange(rest.Input.Select(input => new ModelInput
        {
            Name = input.Name,
            DataType = Value<DataType>(DataTypes, input.DataType),
            Format = Value<ModelInput.Types.Format>(ModelInput.Descriptor.EnumTypes.Single(), input.Format),
            Dims = { input.Dims },
        }));
        config.Output.AddRange(rest.Output.Select(output => new ModelOutput
        {
            Name = output.Name,
            DataType = Value<DataType>(DataTypes, output.DataType),
            Dims = { output.Dims },
            LabelFilename = output.LabelFilename ?? "",
        }));
        if (rest.DynamicBatching is { } batching)
        {
            var policy = batching.DefaultQueuePolicy;
            config.DynamicBatching = new ModelDynamicBatching
            {
                PreferredBatchSize = { batching.PreferredBatchSize },
                MaxQueueDelayMicroseconds = (ulong)batching.MaxQueueDelayMicroseconds,
                DefaultQueuePolicy = new ModelQueuePolicy
                {
                    TimeoutAction = Value<ModelQueuePolicy.Types.TimeoutAction>(ModelQueuePolicy.Descriptor.EnumTypes.Single(), policy.TimeoutAction),
                    DefaultTimeoutMicroseconds = (ulong)policy.DefaultTimeoutMicroseconds,
                    AllowTimeoutOverride = policy.AllowTimeoutOverride,
                    MaxQueueSize = (uint)policy.MaxQueueSize,
                },
            };
        }

        config.InstanceGroup.AddRange(rest.InstanceGroup.Select(group => new ModelInstanceGroup
        {
            Name = group.Name,
            Kind = Value<ModelInstanceGroup.Types.Kind>(ModelInstanceGroup.Descriptor.EnumTypes.Single(), group.Kind),
            Count = group.Count,
        }));
        foreach (var (name, parameter) in rest.Parameters)
        {
            config.Parameters[name] = new ModelParameter { StringValue = parameter.StringValue };
        }

        return config;
    }

    public static ModelStatistics From(V2ModelStatistics rest) => new()
    {
        Name = rest.Name,
        Version = rest.Version,
        LastInference = (ulong)rest.LastInference,
        InferenceCount = (ulong)rest.InferenceCount,
        ExecutionCount = (ulong)rest.ExecutionCount,
        InferenceStats = new InferStatistics
        {
            Success = Duration(rest.InferenceStats.Success),
            Fail = Duration(rest.InferenceStats.Fail),
            Queue = Duration(rest.InferenceStats.Queue),
            ComputeInput = Duration(rest.InferenceStats.ComputeInput),
            ComputeInfer = Duration(rest.InferenceStats.ComputeInfer),
            ComputeOutput = Duration(rest.InferenceStats.ComputeOutput),
            CacheHit = Duration(rest.InferenceStats.CacheHit),
            CacheMiss = Duration(rest.InferenceStats.CacheMiss),
        },
        BatchStats =
        {
            rest.BatchStats.Select(batch => new InferBatchStatistics
            {
                BatchSize = (ulong)batch.BatchSize,
                ComputeInput = Duration(batch.ComputeInput),
                ComputeInfer = Duration(batch.ComputeInfer),
                ComputeOutput = Duration(batch.ComputeOutput),
            }),
        },
    };

    private static StatisticDuration Duration(V2Duration duration) => new() { Count = (ulong)duration.Count, Ns = (ulong)duration.Ns };

    private static T Value<T>(EnumDescriptor descriptor, string name)
        where T : struct, Enum =>
        descriptor.FindValueByName(name) is { } value
            ? (T)Enum.ToObject(typeof(T), value.Number)
            : throw new InvalidOperationException($"'{name}' is not a value of {descriptor.FullName}.");
}
