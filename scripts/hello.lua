-- The smallest useful handler: greets whoever the event names.
--
-- The handler string "hello.handler" means: load hello.lua, and call the
-- `handler` function of the table it returns.

local M = {}

-- `event` is the invocation's JSON input, decoded into Lua tables.
-- `context` describes the invocation (context.aws_request_id,
-- context:get_remaining_time_in_millis(), ...).
function M.handler(event, context)
  -- A missing field is nil and a JSON null is json.null (which is truthy), so
  -- check the type rather than relying on `or` alone.
  local name = type(event.name) == "string" and event.name or "world"

  -- print writes to the function's log (CloudWatch Logs on Lambda).
  print("greeting " .. name)

  -- The returned table is encoded as the JSON response.
  return { message = "Hello, " .. name .. "!" }
end

return M
