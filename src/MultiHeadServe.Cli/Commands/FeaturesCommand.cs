using System.CommandLine;
using System.Data.Common;
using System.Globalization;
using MultiHeadServe.Features.Store;
using StackExchange.Redis;

namespace MultiHeadServe.Cli.Commands;

/// <summary>
/// <c>mhs features import &lt;path&gt;... [--store sqlite|postgres|redis] [--sqlite file] [--postgres conn] [--redis conf]
/// [--key-template t] [--table name] [--key column] [--replace]</c>: loads feature CSVs into the online store the
/// service reads. The store's settings default to the service's own environment variables
/// (<c>FeatureStore__PostgresConnectionString</c>, <c>FeatureStore__RedisConfiguration</c>, ...), so the same
/// deployment settings serve both.
/// </summary>
internal static class FeaturesCommand
{
    public static Command Create() => new("features", "Manage the online feature store's data.") { ImportCommand() };

    private static Command ImportCommand()
    {
        var paths = new Argument<string[]>("paths")
        {
            Description = "CSV files, or directories: their *.csv, features/*.csv and */features/*.csv ('models' loads every demo table).",
            Arity = ArgumentArity.OneOrMore,
        };
        var store = new Option<string>("--store")
        {
            Description = "sqlite, postgres or redis. Default: postgres with --postgres, redis with --redis, else sqlite.",
        };
        var sqlite = new Option<string>("--sqlite") { Description = "The SQLite file (default data/features.db)." };
        var postgres = new Option<string>("--postgres") { Description = "An Npgsql connection string." };
        var redis = new Option<string>("--redis") { Description = "A StackExchange.Redis configuration string, e.g. localhost:6379." };
        var keyTemplate = new Option<string>("--key-template")
        {
            Description = $"Redis: where an entity's hash lives; {{table}} and {{key}} are replaced (default {RedisKeyLayout.DefaultTemplate}).",
        };
        var table = new Option<string>("--table") { Description = "The table to load a single CSV file into (default: the file's name)." };
        var key = new Option<string>("--key") { Description = "The key column of the CSV files (default: each file's first column)." };
        var replace = new Option<bool>("--replace") { Description = "Rewrite tables that exist (by default they are left as they are)." };

        var command = new Command("import", "Load feature CSVs (a key column and numeric feature columns) into SQLite, PostgreSQL or Redis, one table per file.")
        {
            paths, store, sqlite, postgres, redis, keyTemplate, table, key, replace,
        };
        command.SetAction(parsed =>
        {
            var options = new FeatureStoreOptions
            {
                Provider = parsed.GetValue(store) ?? Setting("Provider"),
                SqlitePath = parsed.GetValue(sqlite) ?? Setting("SqlitePath") ?? new FeatureStoreOptions().SqlitePath,
                PostgresConnectionString = parsed.GetValue(postgres) ?? Setting("PostgresConnectionString"),
                RedisConfiguration = parsed.GetValue(redis) ?? Setting("RedisConfiguration"),
                RedisKeys = new RedisKeyLayout { Template = parsed.GetValue(keyTemplate) ?? Setting("RedisKeys__Template") ?? RedisKeyLayout.DefaultTemplate },
            };
            var import = new FeatureImportOptions { Table = parsed.GetValue(table), KeyColumn = parsed.GetValue(key), Replace = parsed.GetValue(replace) };
            var errors = options.Validate();
            if (errors.Count > 0)
            {
                throw new UsageException(string.Join(" ", errors));
            }

            var output = parsed.InvocationConfiguration.Output;
            try
            {
                var results = ImportAsync(options, parsed.GetRequiredValue(paths), import).GetAwaiter().GetResult();
                var report = new TextTable("table", "outcome", "rows");
                foreach (var result in results)
                {
                    report.Add(result.Table, result.Outcome.ToString().ToLowerInvariant(), result.RowCount.ToString(CultureInfo.InvariantCulture));
                }

                output.WriteLine($"{options.ResolveProvider()} feature store:");
                report.WriteTo(output);
                return ExitCodes.Success;
            }
            catch (Exception exception) when (exception is FeatureCsvException or FeatureSchemaException or DbException or RedisException or TimeoutException)
            {
                parsed.InvocationConfiguration.Error.WriteLine($"mhs: {exception.Message}");
                return ExitCodes.Failure;
            }
        });
        return command;
    }

    private static async Task<IReadOnlyList<FeatureSeedResult>> ImportAsync(FeatureStoreOptions options, string[] paths, FeatureImportOptions import)
    {
        var writer = FeatureStoreFactory.Create(options, Directory.GetCurrentDirectory());
        try
        {
            return await FeatureImport.ImportAsync(writer, paths, import);
        }
        finally
        {
            switch (writer)
            {
                case IAsyncDisposable asyncDisposable:
                    await asyncDisposable.DisposeAsync();
                    break;
                case IDisposable disposable:
                    disposable.Dispose();
                    break;
            }
        }
    }

    /// <summary>The service's setting <c>FeatureStore:&lt;name&gt;</c> from its environment variable, if set.</summary>
    private static string? Setting(string name) =>
        Environment.GetEnvironmentVariable($"{FeatureStoreOptions.SectionName}__{name}") is { Length: > 0 } value ? value : null;
}
