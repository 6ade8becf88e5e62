-- wrk script for bench/nodes.sh: bench/wrk.lua's request and response checks, unchanged,
-- plus the latency distribution written to a file, so that nodes.sh can merge the
-- distributions of two wrk processes (one per node) into one p50 / p99.
--
-- Environment, besides wrk.lua's BENCH_AUTH, BENCH_BODY and BENCH_EXPECT:
--   BENCH_WRK_LUA    path of bench/wrk.lua (default: bench/wrk.lua, relative to the
--                    working directory)
--   BENCH_QUANTILES  file to write: 1000 lines "PERCENT MICROSECONDS", the latency at
--                    0.1%, 0.2%, ... 100% of the requests (100%: the slowest). Optional.

dofile(os.getenv("BENCH_WRK_LUA") or "bench/wrk.lua")

local checks_done = done
local steps = 1000

function done(summary, latency, requests)
  checks_done(summary, latency, requests)
  local path = os.getenv("BENCH_QUANTILES") or ""
  if path == "" then
    return
  end
  local file = assert(io.open(path, "w"))
  for k = 1, steps do
    local value
    if k == steps then
      -- wrk's percentile(100) ranks past the last request and answers 0.
      value = latency.max
    else
      value = latency:percentile(100 * k / steps)
    end
    file:write(string.format("%.1f %d\n", 100 * k / steps, value))
  end
  file:close()
end
