namespace MultiHeadServe.Inference;

/// <summary>
/// Triton's rule for the next batch, apart from the threads that apply it. Requests join in arrival order
/// and are never split. If some prefix of the queue adds up to a preferred batch size, the longest such
/// prefix goes now (7 queued single-row requests with preferred sizes 4 and 8 send 4). Otherwise the
/// largest prefix that fits <c>maxBatchSize</c> goes once it cannot grow (it is full, or the next request
/// does not fit) or once the oldest request has waited <c>maxQueueDelayMicroseconds</c>; until then the
/// batcher waits for more requests.
/// </summary>
internal static class BatchFormation
{
    /// <summary>How many requests, from the front of the queue, to dispatch now; 0 means wait.</summary>
    /// <param name="queuedRows">The rows of each queued request, oldest first (at least one request).</param>
    /// <param name="maxBatchSize">The most rows one run takes; a larger request is dispatched alone (and run in slices of this many rows).</param>
    /// <param name="preferred">Preferred batch sizes (rows); may be empty.</param>
    /// <param name="delayExpired">The oldest request has waited the maximum queue delay (or the batcher is stopping).</param>
    public static int Take(IEnumerable<int> queuedRows, int maxBatchSize, IReadOnlySet<int> preferred, bool delayExpired)
    {
        var rows = 0;
        var take = 0;
        var preferredTake = 0;
        var nextDoesNotFit = false;
        foreach (var requestRows in queuedRows)
        {
            if (take > 0 && rows + requestRows > maxBatchSize)
            {
                nextDoesNotFit = true;
                break;
            }

            rows += requestRows;
            take++;
            if (preferred.Contains(rows))
            {
                preferredTake = take;
            }
        }

        if (take == 0)
        {
            return 0;
        }

        if (preferredTake > 0)
        {
            return preferredTake;
        }

        var full = rows >= maxBatchSize || nextDoesNotFit;
        return full || delayExpired ? take : 0;
    }
}
