-- wrk script: cycle through the request paths listed (one a line) in the file named by the
-- WRK_PATHS environment variable. Per request, "{AREA}" becomes a random integer in
-- [1000, 40000] and "{BOX:x,y}" a 0.06 x 0.045 degree box (about 5 km) centred up to 0.02
-- degrees from (x, y), so no server can answer from a cache of earlier requests. At the end,
-- wrk_report.lua prints the figures. Scripted requests cost wrk CPU on every request, so
-- fixed single-path queries run without this part (same for both servers).
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

