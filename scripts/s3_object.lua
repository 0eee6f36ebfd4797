-- Handles S3 event notifications: an object was created (or removed) in a
-- bucket whose notifications go to this function.
--
-- The event names each object (bucket, key, size), not its content: read it
-- with aws.client("s3"):GetObject when the handler needs it. Keys arrive
-- URL-encoded, with "+" for a space ("my report.csv" is "my+report.csv").
-- A notification can carry several records; handle each.

local M = {}

function M.handler(event, context)
  local objects = setmetatable({}, json.array_mt)
  for _, record in ipairs(event.Records) do
    local bucket = record.s3.bucket.name
    local key = url.decode(record.s3.object.key)
    log.info(record.eventName, bucket .. "/" .. key)
    table.insert(objects, {
      event = record.eventName,
      bucket = bucket,
      key = key,
      -- Removals carry no size.
      size = record.s3.object.size or 0,
    })
  end
  return { count = #objects, objects = objects }
end

return M
