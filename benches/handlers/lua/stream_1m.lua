-- The benchmark's streaming handler: a 1 MiB answer streamed in 16 writes of 64 KiB.
local M = {}

local chunk = string.rep("x", 64 * 1024)

function M.handler(event, context)
  local out = context:stream({ content_type = "text/plain" })
  for _ = 1, 16 do
    out:write(chunk)
  end
end

return M
