namespace MultiHeadServe.Heads.Losses;

/// <summary>
/// Parameters of the losses that have one. The defaults are PyTorch's (<c>HuberLoss(delta=1.0)</c>,
/// <c>SmoothL1Loss(beta=1.0)</c>); the manifest has no field for them yet.
/// </summary>
public sealed record LossOptions
{
    /// <summary>The shared default options.</summary>
    public static LossOptions Default { get; } = new();

    /// <summary>Huber's delta: quadratic below it, linear above. Must be positive.</summary>
    public double HuberDelta { get; init; } = 1.0;

    /// <summary>Smooth L1's beta: quadratic below it, linear above; 0 makes it L1. Must not be negative.</summary>
    public double SmoothL1Beta { get; init; } = 1.0;
}
