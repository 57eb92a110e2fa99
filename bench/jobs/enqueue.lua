-- wrk script for bench/jobs.sh: POST /api/v1/jobs with one no-op job per request, or,
-- with BATCH=n in the environment, POST /api/v1/jobs/batch with n no-op jobs. The token is
-- ADMIN_TOKEN's. Answers other than 202 are counted and printed at the end.
local batch = tonumber(os.getenv("BATCH") or "0")
local job = '{"kind":"noop","payload":{"n":1}}'
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer " .. os.getenv("ADMIN_TOKEN")
if batch > 0 then
  wrk.path = "/api/v1/jobs/batch"
  wrk.body = '{"jobs":[' .. string.rep(job, batch, ",") .. ']}'
else
  wrk.path = "/api/v1/jobs"
  wrk.body = job
end

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init() refused = 0 end
function response(status) if status ~= 202 then refused = refused + 1 end end
function done()
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("refused") end
  io.write(string.format("refused %d\n", total))
end
