-- An HTTP API behind API Gateway (HTTP API, payload format 2.0).
--
-- The event describes one HTTP request: event.rawPath, event.requestContext.http.method,
-- event.queryStringParameters, event.body (a string). The handler returns the
-- response as a table: statusCode, headers and a string body, so a JSON
-- response body is encoded with json.encode.
--
-- Routes: POST /orders?currency=EUR with a JSON body {"item": ..., "quantity": ...}.
-- Anything else is a 404.

local M = {}

-- A JSON null arrives as json.null, and Lua counts json.null as true, so
-- `event.x or default` keeps the null. API Gateway's REST APIs send
-- "queryStringParameters": null when the URL has no query (and "body": null for
-- a GET), so read such fields through `present`: nil for missing and null alike.
local function present(value)
  if value == json.null then return nil end
  return value
end

-- Builds the response API Gateway expects, with `data` as a JSON body.
local function respond(status, data)
  return {
    statusCode = status,
    headers = { ["content-type"] = "application/json" },
    body = json.encode(data),
  }
end

function M.handler(event, context)
  local method = event.requestContext.http.method
  if method ~= "POST" or event.rawPath ~= "/orders" then
    return respond(404, { error = "no route for " .. method .. " " .. event.rawPath })
  end

  -- HTTP APIs leave queryStringParameters out when the URL has no query; REST
  -- APIs send null.
  local query = present(event.queryStringParameters) or {}

  -- The body arrives as text. (When event.isBase64Encoded is true, as for
  -- binary uploads, it is base64 text instead; this example does not handle
  -- that.) json.decode raises an error on malformed JSON: pcall catches it so
  -- the client gets a 400 rather than a 500.
  local ok, order = pcall(json.decode, present(event.body) or "")
  if not ok or type(order) ~= "table" then
    return respond(400, { error = "the body must be a JSON object" })
  end

  return respond(200, {
    item = order.item,
    quantity = order.quantity,
    currency = query.currency or "USD",
  })
end

return M
