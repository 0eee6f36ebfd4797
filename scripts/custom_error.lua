-- Fails with a typed error, so whatever invoked the function can tell this
-- failure apart from a crash.
--
-- Lambda reports a handler error as {"errorType", "errorMessage", "stackTrace"}.
-- error("some text") gives errorType "Error"; raising a table with errorType
-- and errorMessage sets both. A Step Functions state can then match on the
-- type:
--
--   "Catch": [{ "ErrorEquals": ["OrderNotFound"], "Next": "TellCustomer" }]

local M = {}

-- Stands in for a database: the one order that exists.
local orders = {
  ["ord-1001"] = { item = "coffee", quantity = 2 },
}

function M.handler(event, context)
  local order = orders[event.orderId]
  if order == nil then
    error({
      errorType = "OrderNotFound",
      errorMessage = "no order with id " .. tostring(event.orderId),
    })
  end
  return order
end

return M
