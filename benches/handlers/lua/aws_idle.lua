-- The benchmark's idle aws handler: makes a client at load and never calls it,
-- then echoes (cold ready must be the echo's).
local M = {}

local ddb = aws.client("dynamodb")

function M.handler(event, context)
  return event
end

return M
