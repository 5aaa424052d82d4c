-- wrk script for benches/api_load.sh: GET requests (the URL on wrk's command line) with the
-- X-Internal-Key header set by api_load.sh in API_KEY; counts answers by status and prints
-- one parseable line at the end:
--   RESULT requests=N rps=R p50_ms=.. p90_ms=.. p99_ms=.. max_ms=.. status=200:N,...
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    wrk.headers["X-Internal-Key"] = os.getenv("API_KEY") or "k"
    codes = {}
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
    local secs = summary.duration / 1e6
    io.write(string.format(
        "RESULT requests=%d rps=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f mean_ms=%.2f errors=%d status=%s\n",
        summary.requests, summary.requests / secs,
        latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
        latency.max / 1000, latency.mean / 1000,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
        table.concat(parts, ",")))
end
