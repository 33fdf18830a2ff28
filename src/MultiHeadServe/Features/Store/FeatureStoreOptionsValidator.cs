using Microsoft.Extensions.Options;

namespace MultiHeadServe.Features.Store;

/// <summary>Fails start-up with every problem in the <c>FeatureStore</c> section, each named by its key.</summary>
internal sealed class FeatureStoreOptionsValidator : IValidateOptions<FeatureStoreOptions>
{
    public ValidateOptionsResult Validate(string? name, FeatureStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.Validate();
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
