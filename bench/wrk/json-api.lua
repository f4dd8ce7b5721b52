-- wrk script for isolate-service's JSON API (and for any service with the same API).
--
-- Request: POST of a JSON body when WRK_BODY_FILE (a path) or WRK_BODY (the text) is set,
-- otherwise GET. WRK_TOKEN, when set, is sent as `Authorization: Bearer <token>`.
-- The request is formatted once, so every request on every connection is the same.
--
-- Counting: response() counts answers whose status is not 2xx; socket errors (connect, read,
-- write, timeout) come from wrk's own summary, since no answer reaches response() for them.
--
-- Output: done() prints ONE line of JSON to stdout, after wrk's text report:
--   {"label", "connections", "duration_s", "requests", "rps",
--    "p50_us", "p90_us", "p99_us", "max_us", "mean_us",
--    "non2xx", "errors", "socket_errors": {"connect", "read", "write", "timeout"}}
-- with label and connections copied from WRK_LABEL and WRK_CONNECTIONS (wrk does not tell a
-- script its connection count). Latencies are in microseconds.
--
-- Usage: WRK_BODY_FILE=body.json wrk -t1 -c8 -d10s -s bench/wrk/json-api.lua http://host:port/execute

local function read_file(path)
  local f = assert(io.open(path, "rb"), "cannot open " .. path)
  local text = f:read("*a")
  f:close()
  return text
end

local body = os.getenv("WRK_BODY")
local body_file = os.getenv("WRK_BODY_FILE")
if body_file and body_file ~= "" then
  body = read_file(body_file)
end
if body and body ~= "" then
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
else
  wrk.method = "GET"
end
wrk.headers["Accept"] = "application/json"
local token = os.getenv("WRK_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

-- Per thread (each thread runs this file in its own Lua state).
non2xx = 0
first_bad = nil

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_bad == nil then
      first_bad = status .. " " .. string.sub(body or "", 1, 200)
    end
  end
end

-- In the main state: keep every thread so that done() can read its counters.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local function json_string(s)
  s = string.gsub(s, '[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. s .. '"'
end

local function number(n)
  if n ~= n or n == math.huge or n == -math.huge then return "null" end
  if n == math.floor(n) then return string.format("%d", n) end
  return string.format("%.3f", n)
end

function done(summary, latency, requests)
  local bad, sample = 0, nil
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non2xx") or 0)
    sample = sample or t:get("first_bad")
  end
  local e = summary.errors
  local socket = e.connect + e.read + e.write + e.timeout
  local seconds = summary.duration / 1e6
  local fields = {
    '"label":' .. json_string(os.getenv("WRK_LABEL") or ""),
    '"connections":' .. number(tonumber(os.getenv("WRK_CONNECTIONS") or "") or 0),
    '"duration_s":' .. number(seconds),
    '"requests":' .. number(summary.requests),
    '"rps":' .. number(seconds > 0 and summary.requests / seconds or 0),
    '"p50_us":' .. number(latency:percentile(50)),
    '"p90_us":' .. number(latency:percentile(90)),
    '"p99_us":' .. number(latency:percentile(99)),
    '"max_us":' .. number(latency.max),
    '"mean_us":' .. number(latency.mean),
    '"non2xx":' .. number(bad),
    '"errors":' .. number(socket),
    '"socket_errors":{"connect":' .. number(e.connect) .. ',"read":' .. number(e.read)
      .. ',"write":' .. number(e.write) .. ',"timeout":' .. number(e.timeout) .. '}',
  }
  if sample then
    table.insert(fields, '"first_non2xx":' .. json_string(sample))
  end
  io.write("{" .. table.concat(fields, ",") .. "}\n")
end
