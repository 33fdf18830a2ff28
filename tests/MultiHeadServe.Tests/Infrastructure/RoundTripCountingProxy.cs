using System.Net;
using System.Net.Sockets;

namespace MultiHeadServe.Tests.Infrastructure;

/// <summary>
/// A TCP proxy on 127.0.0.1 in front of a Redis server that counts round trips: it reads the commands a client
/// sends and the replies it gets (RESP), and a round trip starts whenever the client sends a command while it
/// awaits no answer. A pipeline counts once however the client's writes split it, and so does a transaction
/// (MULTI … EXEC: its data comes with EXEC's reply; the QUEUED acknowledgements carry none); a client that waits
/// for an answer before its next command counts twice.
/// </summary>
/// <remarks>Counts are over every connection through the proxy. Dispose to close the listener and every connection.</remarks>
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

            var exchange = new Exchange();
            _ = PumpAsync(client.GetStream(), upstream.GetStream(), fromClient: true, exchange);
            _ = PumpAsync(upstream.GetStream(), client.GetStream(), fromClient: false, exchange);
        }
    }

    private async Task PumpAsync(NetworkStream from, NetworkStream to, bool fromClient, Exchange exchange)
    {
        var buffer = new byte[256 * 1024];
        var pending = new List<byte>();
        try
        {
            while (true)
            {
                var read = await from.ReadAsync(buffer, _stop.Token);
                if (read == 0)
                {
                    break;
                }

                pending.AddRange(buffer.AsSpan(0, read));
                var values = Resp.Complete(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(pending), out var consumed);
                pending.RemoveRange(0, consumed);
                lock (exchange)
                {
                    foreach (var name in values)
                    {
                        if (fromClient)
                        {
                            if (exchange.AwaitedData == 0 && !exchange.InTransaction)
                            {
                                Interlocked.Increment(ref _roundTrips);
                            }

                            exchange.Sent(name);
                        }
                        else
                        {
                            exchange.Answered();
                        }
                    }
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

    /// <summary>One connection's commands sent and not yet answered, in order.</summary>
    private sealed class Exchange
    {
        private readonly Queue<Reply> _expected = new();

        private enum Reply
        {
            /// <summary>MULTI's OK or a command's QUEUED: no data.</summary>
            Acknowledgement,

            /// <summary>A command's answer.</summary>
            Data,

            /// <summary>EXEC's or DISCARD's answer, which ends a transaction.</summary>
            EndOfTransaction,
        }

        /// <summary>Answers carrying data the client still awaits.</summary>
        public int AwaitedData { get; private set; }

        /// <summary>Between MULTI and the answer to its EXEC.</summary>
        public bool InTransaction { get; private set; }

        private bool _queueing;

        public void Sent(string command)
        {
            if (command is "MULTI")
            {
                _queueing = InTransaction = true;
                Expect(Reply.Acknowledgement);
            }
            else if (_queueing && command is "EXEC" or "DISCARD")
            {
                _queueing = false;
                Expect(Reply.EndOfTransaction);
            }
            else
            {
                Expect(_queueing ? Reply.Acknowledgement : Reply.Data);
            }
        }

        public void Answered()
        {
            // Pushes (pub/sub) answer no command.
            if (!_expected.TryDequeue(out var reply))
            {
                return;
            }

            if (reply != Reply.Acknowledgement)
            {
                AwaitedData--;
            }

            if (reply == Reply.EndOfTransaction)
            {
                InTransaction = false;
            }
        }

        private void Expect(Reply reply)
        {
            _expected.Enqueue(reply);
            if (reply != Reply.Acknowledgement)
            {
                AwaitedData++;
            }
        }
    }

    /// <summary>Just enough of the Redis protocol (RESP2 and RESP3) to tell where each value ends.</summary>
    private static class Resp
    {
        /// <summary>
        /// The complete top-level values at the start of <paramref name="data"/> (for a command, its name in upper
        /// case; otherwise empty), and the bytes they span.
        /// </summary>
        public static List<string> Complete(ReadOnlySpan<byte> data, out int consumed)
        {
            var values = new List<string>();
            consumed = 0;
            var position = 0;
            while (TrySkip(data, ref position))
            {
                values.Add(CommandName(data[consumed..position]));
                consumed = position;
            }

            return values;
        }

        /// <summary>The first bulk string of an array (a command's name), upper case; empty for anything else.</summary>
        private static string CommandName(ReadOnlySpan<byte> value)
        {
            if (value.Length == 0 || value[0] != (byte)'*')
            {
                return "";
            }

            var header = value.IndexOf("\r\n"u8);
            var rest = value[(header + 2)..];
            if (rest.Length == 0 || rest[0] != (byte)'$')
            {
                return "";
            }

            var lengthEnd = rest.IndexOf("\r\n"u8);
            var length = Number(rest[1..lengthEnd]);
            return System.Text.Encoding.ASCII.GetString(rest.Slice(lengthEnd + 2, length)).ToUpperInvariant();
        }

        private static bool TrySkip(ReadOnlySpan<byte> data, ref int position)
        {
            if (position >= data.Length)
            {
                return false;
            }

            var end = data[position..].IndexOf("\r\n"u8);
            if (end < 0)
            {
                return false;
            }

            var type = data[position];
            var line = data.Slice(position + 1, end - 1);
            var next = position + end + 2;
            switch (type)
            {
                case (byte)'$' or (byte)'!' or (byte)'=':
                    var length = Number(line);
                    if (length >= 0)
                    {
                        if (next + length + 2 > data.Length)
                        {
                            return false;
                        }

                        next += length + 2;
                    }

                    break;
                case (byte)'*' or (byte)'~' or (byte)'>' or (byte)'%' or (byte)'|':
                    var elements = Number(line) * (type is (byte)'%' or (byte)'|' ? 2 : 1);
                    for (var i = 0; i < elements; i++)
                    {
                        if (!TrySkip(data, ref next))
                        {
                            return false;
                        }
                    }

                    // An attribute annotates the value that follows it.
                    if (type == (byte)'|' && !TrySkip(data, ref next))
                    {
                        return false;
                    }

                    break;
                default:
                    // Simple strings, errors, integers, nulls, booleans, doubles, big numbers: one line.
                    break;
            }

            position = next;
            return true;
        }

        private static int Number(ReadOnlySpan<byte> text) =>
            int.Parse(System.Text.Encoding.ASCII.GetString(text), System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture);
    }
}
