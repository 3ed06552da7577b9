-- wrk script: send the requests listed in the file named by WRK_LINES, one a line:
-- "METHOD<TAB>PATH" or "POST<TAB>PATH<TAB>JSON BODY". The lines are drawn in Python
-- (bench/versus.py), each with its own random values, so no two requests of a run ask the
-- same thing and every server gets the very same sequence. Thread k of n starts k/n of the
-- way through the list and walks on from there, so threads do not repeat each other's
-- requests (the list holds more lines than a run sends). wrk_report.lua prints the figures.
local lines = {}
local counter = 0
local thread_number = 0

function setup(thread)
  thread_number = thread_number + 1
  thread:set("number", thread_number)
end

function init(args)
  for line in io.lines(os.getenv("WRK_LINES")) do
    if #line > 0 then
      local method, rest = line:match("^(%u+)\t(.*)$")
      local path, body = rest:match("^([^\t]*)\t(.*)$")
      if path == nil then path, body = rest, nil end
      table.insert(lines, {method, path, body})
    end
  end
  local of = tonumber(os.getenv("WRK_THREADS")) or 1
  counter = math.floor((number - 1) * #lines / of)
end

local json_headers = {["Content-Type"] = "application/json"}

function request()
  counter = counter % #lines + 1
  local r = lines[counter]
  if r[3] ~= nil then
    return wrk.format(r[1], r[2], json_headers, r[3])
  end
  return wrk.format(r[1], r[2])
end
