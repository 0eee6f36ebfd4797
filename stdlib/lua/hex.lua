---@meta hex

---Bytes as hexadecimal and back, built in (also `require "hex"`).
---
---Use with `crypto`, whose digests are raw bytes:
---`hex.encode(crypto.sha256(body))`.
---@class hexlib
hex = {}

---`data` as lower-case hexadecimal, two digits per byte.
---
---Example: `hex.encode("\1\255")` → `"01ff"`.
---@param data string bytes to encode (any Lua string)
---@return string
---@nodiscard
function hex.encode(data) end

---The bytes that hexadecimal `text` spells; upper and lower case are both accepted.
---
---Raises an error when `text` has an odd number of digits or holds a
---character that is not a hex digit (the message names its byte position).
---@param text string hexadecimal digits
---@return string bytes the decoded bytes
---@nodiscard
function hex.decode(text) end

return hex
