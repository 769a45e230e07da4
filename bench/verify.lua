-- wrk script of the verify load benchmarks (scripts/bench-verify,
-- scripts/bench-guard). KEYS_FILE holds the bearer (a verifier key) on its
-- first line and the keys to present on the following ones. Each
-- connection presents the keys in turn; every answer that is not 200 with
-- "valid":true counts as wrong.
--
-- By default each request is POST /v1/api-keys/verify with the verifier as
-- bearer and the key in the body (and client_ip, with CLIENT_IP). With MODE=bearer it is GET /orders with
-- the key itself as bearer, as callers of an API protected by guard send
-- it (bench/noop -guard answers "valid":true once the guard let it in).
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("KEYS_FILE"), "r"))
  local bearer = f:read("*l")
  local headers = {["Authorization"] = "Bearer " .. bearer, ["Content-Type"] = "application/json"}
  local asBearer = os.getenv("MODE") == "bearer"
  -- CLIENT_IP, when set, is sent as verify's client_ip (keys seeded with an
  -- allowlist: scripts/bench-verify ALLOW_IP).
  clientIP = os.getenv("CLIENT_IP")
  reqs = {}
  for key in f:lines() do
    if asBearer then
      table.insert(reqs, wrk.format("GET", "/orders", {["Authorization"] = "Bearer " .. key}, nil))
    else
      local body = '{"key":"' .. key .. '","scopes":["orders:read"],"environment_id":"prod"}'
      if clientIP then
        body = '{"key":"' .. key .. '","scopes":["orders:read"],"environment_id":"prod","client_ip":"' .. clientIP .. '"}'
      end
      table.insert(reqs, wrk.format("POST", "/v1/api-keys/verify", headers, body))
    end
  end
  f:close()
  n = 0
  wrong = 0
  ok = 0
end

function request()
  n = n + 1
  return reqs[(n % #reqs) + 1]
end

function response(status, headers, body)
  if status == 200 and string.find(body, '"valid":true', 1, true) then
    ok = ok + 1
  else
    wrong = wrong + 1
  end
end

function done(summary, latency, requests)
  local w, o = 0, 0
  for _, t in ipairs(threads) do
    w = w + t:get("wrong")
    o = o + t:get("ok")
  end
  local errs = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT rps=%.1f p50_us=%d p99_us=%d requests=%d ok=%d wrong=%d socket_errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    summary.requests, o, w, errs))
end
