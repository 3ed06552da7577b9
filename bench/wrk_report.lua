-- wrk script: cycle through the request paths listed (one a line) in the file named by the
-- WRK_PATHS environment variable. Per request, "{AREA}" becomes a random integer in
-- [1000, 40000] and "{BOX:x,y}" a 0.06 x 0.045 degree box (about 5 km) centred up to 0.02
-- degrees from (x, y), so no server can answer from a cache of earlier requests. At the end,
-- print one JSON line with throughput, latency percentiles and error counts.
local paths = {}
local counter = 0
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("seed", thread_count)
end

function init(args)
  for line in io.lines(os.getenv("WRK_PATHS")) do
    if #line > 0 then table.insert(paths, line) end
  end
  math.randomseed(os.time() * 100 + seed)
  counter = seed * 7
end

function request()
  counter = counter + 1
  local path = paths[(counter % #paths) + 1]
  path = path:gsub("{AREA}", function() return tostring(math.random(1000, 40000)) end)
  path = path:gsub("{BOX:([-%d.]+),([-%d.]+)}", function(x, y)
    local cx = tonumber(x) + (math.random() - 0.5) * 0.04
    local cy = tonumber(y) + (math.random() - 0.5) * 0.04
    return string.format("%.5f,%.5f,%.5f,%.5f", cx - 0.03, cy - 0.0225, cx + 0.03, cy + 0.0225)
  end)
  return wrk.format("GET", path)
end

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
