-- The benchmark's aws handler: one DynamoDB GetItem per invocation to the
-- loopback stand-in (AWS_ENDPOINT_URL), signed with the environment's key.
local M = {}

local ddb = aws.client("dynamodb")

function M.handler(event, context)
  local answer = ddb:GetItem({ TableName = "bench", Key = { id = { S = "42" } } })
  return { name = answer.Item.name.S }
end

return M
