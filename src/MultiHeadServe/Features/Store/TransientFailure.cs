using System.Net.Sockets;
using Microsoft.Data.Sqlite;
using Npgsql;
using Polly.Timeout;
using StackExchange.Redis;

namespace MultiHeadServe.Features.Store;

/// <summary>
/// Which store failures are worth retrying and count against the store's health: the ones a
/// second attempt may not see. An unknown table, bad SQL or a bad argument fails the same way
/// every time, so it is neither retried nor allowed to open the circuit.
/// </summary>
internal static class TransientFailure
{
    private const int SqliteBusy = 5;
    private const int SqliteLocked = 6;

    public static bool IsTransient(Exception exception) => exception switch
    {
        // Covers broken connections, refused connects, timeouts and server states such as
        // "cannot connect now" or "admin shutdown"; Npgsql keeps that list.
        NpgsqlException npgsql => npgsql.IsTransient,
        // Microsoft.Data.Sqlite already retries busy/locked until the command timeout; seeing
        // one here means a writer held the database that long.
        SqliteException sqlite => sqlite.SqliteErrorCode is SqliteBusy or SqliteLocked,
        // A lost or refused connection, or a reply that did not come in time (RedisTimeoutException is a TimeoutException).
        RedisConnectionException => true,
        // A server still loading its data, busy with a script, or a replica without its primary: it will pass.
        RedisServerException server => server.Message.StartsWith("LOADING", StringComparison.Ordinal)
            || server.Message.StartsWith("BUSY", StringComparison.Ordinal)
            || server.Message.StartsWith("MASTERDOWN", StringComparison.Ordinal)
            || server.Message.StartsWith("TRYAGAIN", StringComparison.Ordinal),
        TimeoutRejectedException or TimeoutException or IOException or SocketException => true,
        _ => false,
    };
}
