-- The benchmark's Lua handler: the event goes JSON → Lua tables → JSON, nothing else.
local M = {}

function M.handler(event, context)
  return event
end

return M
