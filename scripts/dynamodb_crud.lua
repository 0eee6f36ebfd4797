-- A REST resource on DynamoDB behind API Gateway (HTTP API, payload format 2.0):
--
--   POST   /items        create an item from the JSON body (its "id", or a new one)
--   GET    /items/{id}   read it (404 when there is none)
--   PUT    /items/{id}   replace it, only if it exists (a condition, not a read first)
--   DELETE /items/{id}   delete it
--
-- The table is TABLE_NAME (partition key "id", a string). `aws.client` signs with
-- the function's credentials; `aws.dynamodb.marshal`/`unmarshal` turn plain
-- tables into DynamoDB's typed items and back, as the JS DocumentClient does. A
-- failed condition raises an error whose errorType is DynamoDB's code.

local M = {}

local ddb = aws.client("dynamodb")
local TABLE = os.getenv("TABLE_NAME") or "items"

local function respond(status, data)
  return {
    statusCode = status,
    headers = { ["content-type"] = "application/json" },
    body = data ~= nil and json.encode(data) or "",
  }
end

local function body_of(event)
  local ok, item = pcall(json.decode, event.body ~= json.null and event.body or "")
  if ok and type(item) == "table" then return item end
end

function M.handler(event, context)
  local method = event.requestContext.http.method
  local id = event.rawPath:match("^/items/([^/]+)$")

  if method == "POST" and event.rawPath == "/items" then
    local item = body_of(event)
    if not item then return respond(400, { error = "the body must be a JSON object" }) end
    item.id = item.id or uuid.v4()
    ddb:PutItem({ TableName = TABLE, Item = aws.dynamodb.marshal(item) })
    return respond(201, item)
  elseif method == "GET" and id then
    local found = ddb:GetItem({ TableName = TABLE, Key = aws.dynamodb.marshal({ id = id }) })
    if not found.Item then return respond(404, { error = "no item " .. id }) end
    return respond(200, aws.dynamodb.unmarshal(found.Item))
  elseif method == "PUT" and id then
    local item = body_of(event)
    if not item then return respond(400, { error = "the body must be a JSON object" }) end
    item.id = id
    local ok, err = pcall(ddb.PutItem, ddb, {
      TableName = TABLE,
      Item = aws.dynamodb.marshal(item),
      ConditionExpression = "attribute_exists(id)",
    })
    if not ok then
      ---@cast err -string, +aws.Error
      if err.errorType == "ConditionalCheckFailedException" then
        return respond(404, { error = "no item " .. id })
      end
      error(err)
    end
    return respond(200, item)
  elseif method == "DELETE" and id then
    ddb:DeleteItem({ TableName = TABLE, Key = aws.dynamodb.marshal({ id = id }) })
    return respond(204, nil)
  end
  return respond(404, { error = "no route for " .. method .. " " .. event.rawPath })
end

return M
