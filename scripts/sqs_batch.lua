-- Processes a batch of SQS messages and reports only the failed ones.
--
-- Lambda hands the function up to 10 messages at once (event.Records). If the
-- whole invocation failed, every message would go back to the queue, the good
-- ones included. Instead the handler lists the messages it could not process
-- in batchItemFailures; Lambda deletes the others from the queue and retries
-- only these. (The SQS trigger needs ReportBatchItemFailures turned on.)
--
-- Each message body here should be an order: {"orderId", "item", "quantity"}.

local M = {}

-- Returns the order in a message body, or nil when the body is not a valid
-- order. json.decode raises an error on malformed JSON; pcall catches it.
local function parse_order(body)
  local ok, order = pcall(json.decode, body)
  if ok and type(order) == "table"
      and type(order.orderId) == "string"
      and type(order.item) == "string"
      and math.type(order.quantity) == "integer" and order.quantity > 0 then
    return order
  end
  return nil
end

function M.handler(event, context)
  -- When nothing fails the response must be {"batchItemFailures": []}: Lambda
  -- expects a list there. An empty Lua table encodes as {}, since nothing tells
  -- it apart from an empty object, so mark this one as an array with
  -- json.array_mt. (A table holding 1..n encodes as an array anyway.)
  local failures = setmetatable({}, json.array_mt)

  for _, record in ipairs(event.Records) do
    local order = parse_order(record.body)
    if order then
      print(("order %s: %d x %s"):format(order.orderId, order.quantity, order.item))
    else
      print("message " .. record.messageId .. " is not a valid order")
      table.insert(failures, { itemIdentifier = record.messageId })
    end
  end

  return { batchItemFailures = failures }
end

return M
