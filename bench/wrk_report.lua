-- wrk script: at the end, print one JSON line with throughput, latency percentiles and error
-- counts, plus the latency histogram so runs can be merged exactly. Used alone for a single
-- fixed path (wrk then sends its prebuilt request); bench/features.py appends
-- wrk_paths.lua when paths vary per request.
function done(summary, latency, requests)
  local e = summary.errors
  -- the latency histogram as [microseconds, count] pairs, so runs can be merged exactly
  local hist = {}
  for i = 1, #latency do
    local value, count = latency(i)
    table.insert(hist, string.format("[%d,%d]", value, count))
  end
  io.write('{"histogram": [' .. table.concat(hist, ",") .. ']}\n')
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d, "max_us": %d, "mean_us": %.1f, "non2xx": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, e.status, e.connect, e.read, e.write, e.timeout))
end
