-- The streaming handler's twin, buffered: the same 1 MiB answered at once.
local M = {}

local body = string.rep("x", 1024 * 1024)

function M.handler(event, context)
  return body
end

return M
