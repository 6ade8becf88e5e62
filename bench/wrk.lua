-- wrk script for bench/run.sh: the same POST on every request, and every response
-- checked. A response is bad when its status is not 200 or its body lacks BENCH_EXPECT.
--
-- Environment (read by each wrk thread's own Lua state):
--   BENCH_AUTH    value of the Authorization header (empty: none)
--   BENCH_BODY    the form body
--   BENCH_EXPECT  a substring every good response body contains (plain, not a pattern)
--
-- done() prints lines starting with "bench:" that run.sh reads.

local auth = os.getenv("BENCH_AUTH") or ""
local expect = os.getenv("BENCH_EXPECT") or ""

wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or ""
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
if auth ~= "" then
  wrk.headers["Authorization"] = auth
end

-- Per thread (globals, so that done() can read them with thread:get).
responses = 0
bad_status = 0
bad_body = 0
first_bad = ""

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local function remember(status, body)
  if first_bad == "" then
    first_bad = "status " .. status .. ": " .. string.sub(body or "", 1, 300)
  end
end

function response(status, headers, body)
  responses = responses + 1
  if status ~= 200 then
    bad_status = bad_status + 1
    remember(status, body)
  elseif body == nil or not string.find(body, expect, 1, true) then
    bad_body = bad_body + 1
    remember(status, body)
  end
end

function done(summary, latency, requests)
  local total, status, body, sample = 0, 0, 0, ""
  for _, thread in ipairs(threads) do
    total = total + thread:get("responses")
    status = status + thread:get("bad_status")
    body = body + thread:get("bad_body")
    if sample == "" then
      sample = thread:get("first_bad")
    end
  end
  local e = summary.errors
  io.write(string.format("bench: checked=%d bad_status=%d bad_body=%d\n", total, status, body))
  io.write(string.format("bench: socket_errors=%d connect=%d read=%d write=%d timeout=%d\n",
    e.connect + e.read + e.write + e.timeout, e.connect, e.read, e.write, e.timeout))
  io.write(string.format("bench: non2xx=%d\n", e.status))
  if sample ~= "" then
    io.write("bench: first bad response: " .. sample:gsub("\n", " ") .. "\n")
  end
end
