using System.Net;
using System.Net.Sockets;

namespace MultiHeadServe.Tests.Infrastructure;

/// <summary>
/// A TCP proxy on 127.0.0.1 that forwards to a server and counts round trips: a round trip starts whenever a
/// client sends after the server last answered it (or for the first time), so a pipeline of commands sent together
/// counts once, and a client that waits for an answer before its next command counts twice.
/// </summary>
/// <remarks>Counts are over every connection through the proxy. Meant for sequential requests: a server reply
/// to the first part of a very large pipeline, arriving before the client's last bytes, would count a second
/// trip. Dispose to close the listener and every connection.</remarks>
public sealed class RoundTripCountingProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _upstreamPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TcpClient> _connections = [];
    private readonly Task _accepting;
    private long _roundTrips;

    public RoundTripCountingProxy(int upstreamPort)
    {
        _upstreamPort = upstreamPort;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    /// <summary>The port clients connect to.</summary>
    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Round trips so far, over every connection.</summary>
    public long RoundTrips => Interlocked.Read(ref _roundTrips);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        lock (_connections)
        {
            foreach (var connection in _connections)
            {
                connection.Dispose();
            }
        }

        try
        {
            await _accepting;
        }
        catch (Exception exception) when (exception is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var client = await _listener.AcceptTcpClientAsync(_stop.Token);
            var upstream = new TcpClient();
            try
            {
                await upstream.ConnectAsync(IPAddress.Loopback, _upstreamPort, _stop.Token);
            }
            catch (SocketException)
            {
                // The server is down: the client sees its connection refused, as it would without the proxy.
                upstream.Dispose();
                client.Dispose();
                continue;
            }

            lock (_connections)
            {
                _connections.Add(client);
                _connections.Add(upstream);
            }

            // 0: the server has answered (or nothing was sent yet); 1: the client has sent and awaits an answer.
            var awaiting = new StrongBox();
            _ = PumpAsync(client.GetStream(), upstream.GetStream(), fromClient: true, awaiting);
            _ = PumpAsync(upstream.GetStream(), client.GetStream(), fromClient: false, awaiting);
        }
    }

    private async Task PumpAsync(NetworkStream from, NetworkStream to, bool fromClient, StrongBox awaiting)
    {
        var buffer = new byte[256 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReadAsync(buffer, _stop.Token);
                if (read == 0)
                {
                    break;
                }

                if (fromClient)
                {
                    if (Interlocked.Exchange(ref awaiting.Value, 1) == 0)
                    {
                        Interlocked.Increment(ref _roundTrips);
                    }
                }
                else
                {
                    Interlocked.Exchange(ref awaiting.Value, 0);
                }

                await to.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
            }
        }
        catch (Exception exception) when (exception is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
        finally
        {
            // One side closing closes the other, as a direct connection would.
            from.Close();
            to.Close();
        }
    }

    private sealed class StrongBox
    {
        public int Value;
    }
}
