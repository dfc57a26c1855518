-- wrk script of scripts/bench: one request shape per run, configured by environment variables.
--   BENCH_METHOD (GET; the path is the URL's), BENCH_BODY: the body, where every "{n}" becomes a
--   random number in 1..BENCH_ACCOUNTS (so each request names a random seeded account),
--   BENCH_CONTENT_TYPE, BENCH_COOKIE, BENCH_EXPECT: the expected statuses, e.g. "202" or "200,503".
--   BENCH_DELAY_MS: each connection waits a random 0..2x this many milliseconds before each
--   request (wrk's delay()), which paces the load at about connections / delay requests a
--   second instead of as fast as the answers come back.
-- Every request carries its own client address in X-Real-IP (doorman runs with
-- client_ip_header = X-Real-IP), so per-address limits never short-cut the work.
-- Every response's status is counted; done() prints one line a shell can read:
--   RESULT rps=.. ok_rps=.. p50_ms=.. p99_ms=.. max_ms=.. requests=.. unexpected=.. socket_errors=.. statuses=200:10,503:2

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local method = os.getenv("BENCH_METHOD") or "GET"
local body_template = os.getenv("BENCH_BODY")
local accounts = tonumber(os.getenv("BENCH_ACCOUNTS") or "1000")
local expected = {}
for code in string.gmatch(os.getenv("BENCH_EXPECT") or "200", "%d+") do
  expected[tonumber(code)] = true
end
local headers = {}
if os.getenv("BENCH_CONTENT_TYPE") then headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE") end
if os.getenv("BENCH_COOKIE") then headers["Cookie"] = os.getenv("BENCH_COOKIE") end

local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
if delay_ms > 0 then
  function delay()
    return math.random(0, 2 * delay_ms)
  end
end

counter = 0
unexpected = 0
statuses = {}

function init(args)
  math.randomseed(os.time() + (id or 0) * 7919)
end

function request()
  counter = counter + 1
  -- 10+thread . counter's 24 bits: a new address for each request, 256 requests of a thread in a
  -- row from one /24 (as from an office, a carrier's NAT or a botnet's block), so that the /24's
  -- limit row is shared by requests in flight at the same time.
  headers["X-Real-IP"] = string.format("%d.%d.%d.%d", 10 + id, math.floor(counter / 65536) % 256,
    math.floor(counter / 256) % 256, counter % 256)
  local body = nil
  if body_template then
    body = string.gsub(body_template, "{n}", function() return tostring(math.random(1, accounts)) end)
  end
  return wrk.format(method, nil, headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if not expected[status] then
    unexpected = unexpected + 1
  end
end

function done(summary, latency, requests)
  local total_unexpected = 0
  local merged = {}
  for _, thread in ipairs(threads) do
    total_unexpected = total_unexpected + thread:get("unexpected")
    for status, count in pairs(thread:get("statuses")) do
      merged[status] = (merged[status] or 0) + count
    end
  end
  local parts = {}
  local ok = 0
  for status, count in pairs(merged) do
    table.insert(parts, status .. ":" .. count)
    if status >= 200 and status < 300 then ok = ok + count end
  end
  table.sort(parts)
  local e = summary.errors
  local socket_errors = e.connect + e.read + e.write + e.timeout
  io.write(string.format("RESULT rps=%.1f ok_rps=%.1f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f requests=%d unexpected=%d socket_errors=%d statuses=%s\n",
    summary.requests / (summary.duration / 1e6), ok / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.requests, total_unexpected, socket_errors, table.concat(parts, ",")))
end
