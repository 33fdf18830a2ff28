namespace MultiHeadServe.Features.Store;

/// <summary>
/// A lookup named a table or column the store does not have. A configuration error (a manifest
/// that disagrees with the store), never retried and never counted against the store's health.
/// </summary>
public sealed class FeatureSchemaException : Exception
{
    public FeatureSchemaException()
    {
    }

    public FeatureSchemaException(string message)
        : base(message)
    {
    }

    public FeatureSchemaException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
