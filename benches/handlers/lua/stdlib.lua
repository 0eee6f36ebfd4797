-- The benchmark's stdlib handler, what a webhook receiver does with a request:
-- the body's HMAC (in hex) and digest (in base64), the query rebuilt, the path
-- escaped. The native floor computes the same with the same crates.
local M = {}

function M.handler(event, context)
  local body = event.body
  return {
    signature = hex.encode(crypto.hmac_sha256("bench-secret", body)),
    digest = base64.encode(crypto.sha256(body)),
    query = url.build_query(event.queryStringParameters),
    path = url.encode(event.rawPath),
    request_id = event.requestContext.requestId,
  }
end

return M
