namespace Xunit;

/// <summary>
/// The one member of xunit the test fixtures this benchmark borrows (<c>PostgresServer</c>, <c>RedisServer</c>, compiled
/// from the test project's sources) implement; the benchmark calls their lifetime methods itself, so xunit itself is
/// not needed here.
/// </summary>
internal interface IAsyncLifetime
{
    Task InitializeAsync();

    Task DisposeAsync();
}
