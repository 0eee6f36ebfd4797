-- Returns the event unchanged: handy for seeing what a trigger sends.
--
-- The event goes from JSON to Lua tables and back. It comes out as the same
-- JSON value (object keys sorted, no whitespace): arrays stay arrays even when
-- empty, and null stays null (it is `json.null` in Lua, since a nil field would
-- simply vanish from the table).

local M = {}

function M.handler(event, context)
  return event
end

return M
