-- wrk script for benches/api_load.sh: POST /api/calls/create with the internal key.
-- Environment (set by api_load.sh):
--   API_KEY      the X-Internal-Key value
--   RATE         total creates per second over all wrk threads (0: as fast as answered)
--   MAX_CALLS    total creates over all threads; after that the threads idle until -d ends
--                (a request over the cap becomes GET /healthz, counted as status 200)
--   THREADS      wrk's -t (to split RATE and MAX_CALLS)
-- Pacing is open loop per thread: request k of a thread is due at start + k/rate_per_thread
-- (LuaJIT ffi clock_gettime); wrk's delay() holds each request until it is due.
-- Prints: RESULT requests=N rps=R p50_ms=.. p90_ms=.. p99_ms=.. max_ms=.. errors=N status=201:N,...
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } dt_timespec;
int clock_gettime(int clk, dt_timespec *tp);
]]
local ts = ffi.new("dt_timespec")
local function now_ms()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}
local next_id = 0

function setup(thread)
    thread:set("tid", next_id)
    next_id = next_id + 1
    table.insert(threads, thread)
end

function init(args)
    local n = tonumber(os.getenv("THREADS") or "1")
    rate = tonumber(os.getenv("RATE") or "0") / n
    max_calls = math.floor(tonumber(os.getenv("MAX_CALLS") or "1000") / n)
    wrk.method = "POST"
    wrk.headers["X-Internal-Key"] = os.getenv("API_KEY") or "k"
    wrk.headers["Content-Type"] = "application/json"
    codes = {}
    sent = 0
    start = nil
end

function delay()
    if start == nil then start = now_ms() end
    if sent >= max_calls then return 3600000 end -- done: idle until -d ends
    if rate <= 0 then return 0 end
    local due = start + sent * 1000 / rate
    local d = due - now_ms()
    if d < 0 then return 0 end
    return math.floor(d)
end

function request()
    if sent >= max_calls then
        -- over the cap (a connection's first request is sent without delay()): a cheap GET
        return wrk.format("GET", "/healthz", nil, nil)
    end
    sent = sent + 1
    local n = tid * 10000000 + sent
    local body = string.format(
        '{"contact_id":"bench-%d","phone_number":"+1555%07d","from_number":"+1415%07d"}',
        n, n % 10000000, (n * 7) % 10000000)
    return wrk.format(nil, "/api/calls/create", nil, body)
end

function response(status, headers, body)
    codes[status] = (codes[status] or 0) + 1
end

function done(summary, latency, requests)
    local merged = {}
    for _, t in ipairs(threads) do
        for code, n in pairs(t:get("codes") or {}) do
            merged[code] = (merged[code] or 0) + n
        end
    end
    local parts = {}
    for code, n in pairs(merged) do
        table.insert(parts, code .. ":" .. n)
    end
    table.sort(parts)
    io.write(string.format(
        "RESULT requests=%d p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f mean_ms=%.2f errors=%d status=%s\n",
        summary.requests,
        latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
        latency.max / 1000, latency.mean / 1000,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
        table.concat(parts, ",")))
end
