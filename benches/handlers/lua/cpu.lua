-- The benchmark's CPU-bound handler, for the workers rows (Managed Instances):
-- a chain of SHA-256 digests over the request body, about a millisecond of CPU.
-- The native floor computes the same chain with the same crate.
local M = {}

local ROUNDS = 1000

function M.handler(event, context)
  local body = event.body
  local digest = ""
  for _ = 1, ROUNDS do
    digest = crypto.sha256(digest .. body)
  end
  return { digest = hex.encode(digest) }
end

return M
