-- The request side of one benchmark run, for wrk (bench/load.py starts it).
--
-- Everything comes from key=value arguments after "--", so the scenarios live in Python:
--   method=POST body=... content_type=... token=<bearer token>
--   ids=<file of item ids, one a line>: GET <url path><random id> for each request; ids are
--   drawn from a generator seeded per thread, so every run asks for the same ids in the same
--   order.
-- Every response's status is counted per thread (a response other than 2xx makes the run
-- invalid; wrk's own counter only sees status > 399) and done() prints one line:
--   BENCH_RESULT {"requests": ..., "statuses": {...}, "errors": {...}, "latency_us": {...}}

local threads = {}

-- Per-thread globals, read back in done() with thread:get().
statuses = {}
bad_sample = nil

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_index", #threads)
end

local function parse_args(args)
  local options = {}
  for _, arg in ipairs(args) do
    local key, value = arg:match("^([%w_]+)=(.*)$")
    if key then
      options[key] = value
    end
  end
  return options
end

local function read_ids(path)
  local ids = {}
  for line in io.lines(path) do
    local id = tonumber(line)
    if id then
      ids[#ids + 1] = id
    end
  end
  assert(#ids > 0, "no item ids in " .. path)
  return ids
end

function init(args)
  local options = parse_args(args)
  wrk.method = options.method or "GET"
  wrk.body = options.body
  if options.content_type then
    wrk.headers["Content-Type"] = options.content_type
  end
  if options.token then
    wrk.headers["Authorization"] = "Bearer " .. options.token
  end
  if options.ids then
    local ids = read_ids(options.ids)
    local prefix = wrk.path
    math.randomseed(1000 + thread_index)
    request = function()
      return wrk.format(nil, prefix .. ids[math.random(#ids)])
    end
  end
end

function response(status, _headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if (status < 200 or status > 299) and bad_sample == nil then
    bad_sample = status .. " " .. string.sub(body or "", 1, 300)
  end
end

local JSON_ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function json_string(value)
  local escaped = value:gsub('[%c"\\]', function(char)
    return JSON_ESCAPES[char] or string.format("\\u%04x", string.byte(char))
  end)
  return '"' .. escaped .. '"'
end

local function json_object(entries)
  local parts = {}
  for key, value in pairs(entries) do
    parts[#parts + 1] = json_string(tostring(key)) .. ":" .. value
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, _requests)
  local merged, sample = {}, nil
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      merged[status] = (merged[status] or 0) + count
    end
    sample = sample or thread:get("bad_sample")
  end
  local status_counts = {}
  for status, count in pairs(merged) do
    status_counts[status] = tostring(count)
  end
  local errors = summary.errors
  local result = json_object({
    requests = tostring(summary.requests),
    duration_us = tostring(summary.duration),
    bytes = tostring(summary.bytes),
    statuses = json_object(status_counts),
    errors = json_object({
      connect = tostring(errors.connect),
      read = tostring(errors.read),
      write = tostring(errors.write),
      timeout = tostring(errors.timeout),
      status = tostring(errors.status),
    }),
    latency_us = json_object({
      p50 = tostring(latency:percentile(50)),
      p90 = tostring(latency:percentile(90)),
      p99 = tostring(latency:percentile(99)),
      mean = tostring(latency.mean),
      max = tostring(latency.max),
    }),
    sample = sample and json_string(sample) or "null",
  })
  io.write("BENCH_RESULT " .. result .. "\n")
end
