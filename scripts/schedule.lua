-- Runs on a schedule (an EventBridge rule or EventBridge Scheduler): a nightly
-- report, a cleanup, a periodic sync.
--
-- The event says when the run was due (event.time) and which rule fired
-- (event.resources). Work from event.time, not from the clock: a retried or
-- late run then still covers the period it was meant for. This one covers the
-- hour before its scheduled time.

local M = {}

local HOUR_MS = 3600 * 1000

function M.handler(event, context)
  local due = time.parse_iso8601(event.time)
  local window = { from = time.iso8601(due - HOUR_MS), to = time.iso8601(due) }
  log.info("covering", window.from, "to", window.to)
  return {
    rule = event.resources[1],
    window = window,
  }
end

return M
