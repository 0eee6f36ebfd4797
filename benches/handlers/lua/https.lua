-- The benchmark's http handler: one GET to the loopback upstream per
-- invocation, over the pooled connection; answers its status and body size.
local M = {}

local target = os.getenv("BENCH_UPSTREAM_URL")

function M.handler(event, context)
  local res = http.get(target)
  return { status = res.status, length = #res.body }
end

return M
