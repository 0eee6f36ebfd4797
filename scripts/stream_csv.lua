-- Streams a CSV report as it is produced (response streaming): the caller
-- (a Function URL in RESPONSE_STREAM mode, or InvokeWithResponseStream) gets
-- the first rows before the last are computed, and the answer may reach 200 MiB
-- instead of 6 MB.
--
-- `context:stream(options)` starts the answer; each `out:write(text)` is sent
-- at once. For a Function URL that sets its status and headers, pass
-- `status_code`/`headers`/`cookies` instead of `content_type`. What the handler
-- returns is written last (nil: nothing).

local M = {}

function M.handler(event, context)
  local out = context:stream({ content_type = "text/csv" })
  out:write("id,name,quantity,price\n")
  for id = 1, event.rows or 3 do
    -- A real report would read a page of rows here (DynamoDB, S3, an API).
    out:write(string.format("%d,item %d,%d,%.2f\n", id, id, id * 3, id * 1.25))
  end
  return nil
end

return M
