-- wrk script: send pre-made requests in turn over keep-alive connections.
--
--   wrk ... -s rotate.lua URL -- DIR COUNT METHOD PATH CONTENT-TYPE AUTH
--
-- DIR/0 .. DIR/COUNT-1 are the request bodies (CSRs, JSON; not read for a
-- GET); AUTH is an Authorization header value or "-".  Each thread starts at
-- a different body.  At the end
-- one line "BENCH-JSON {...}" gives the counts bench.py reads, so a run in
-- which any request failed is visible, never silently counted as a success.

local reqs = {}
local pos = 0
local threads = {}
local counter = 0

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   local dir, count, method, path = args[1], tonumber(args[2]), args[3], args[4]
   local ctype, auth = args[5], args[6]
   local headers = {}
   if ctype and ctype ~= "-" then headers["Content-Type"] = ctype end
   if auth and auth ~= "-" then headers["Authorization"] = auth end
   for i = 0, count - 1 do
      local body = nil
      if method == "POST" then
         local f = assert(io.open(dir .. "/" .. i, "rb"))
         body = f:read("*a")
         f:close()
      end
      reqs[#reqs + 1] = wrk.format(method, path, headers, body)
   end
   pos = (id or 0) * 7
   statuses = {}
end

function request()
   pos = pos % #reqs + 1
   return reqs[pos]
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local total, codes = {}, {}
   for _, t in ipairs(threads) do
      for k, v in pairs(t:get("statuses") or {}) do
         total[k] = (total[k] or 0) + v
      end
   end
   for k, v in pairs(total) do
      codes[#codes + 1] = string.format('"%d": %d', k, v)
   end
   io.write(string.format(
      'BENCH-JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, ' ..
      '"timeout": %d}, "latency_p50_us": %d, "latency_p99_us": %d, ' ..
      '"statuses": {%s}}\n',
      summary.requests, summary.duration, summary.bytes,
      summary.errors.connect, summary.errors.read, summary.errors.write,
      summary.errors.status, summary.errors.timeout,
      latency:percentile(50), latency:percentile(99),
      table.concat(codes, ", ")))
end
