---@meta base64

---RFC 4648 base64 and base64url, built in (also `require "base64"`).
---
---`encode` pads with `=`; `url_encode` does not (as JWTs and URLs want).
---Both decoders accept padded and unpadded text. Decoded values are byte
---strings (any Lua string, not necessarily UTF-8).
---
---Errors are Lua error strings, catchable with `pcall`, e.g.
---`app.lua:7: base64.decode: argument 1 is not valid base64 at byte 7 ('!')`.
---@class base64lib
base64 = {}

---`data` in standard base64 (RFC 4648, `+` and `/`), padded with `=`.
---
---Example: `base64.encode("hi")` → `"aGk="`.
---@param data string bytes to encode (any Lua string)
---@return string
---@nodiscard
function base64.encode(data) end

---The bytes that standard base64 `text` encodes, padded or unpadded.
---
---Raises an error when `text` is not valid base64 (a character outside the
---alphabet, an impossible length, bad padding); the message names the byte
---position.
---@param text string standard base64 (`+` and `/`)
---@return string bytes the decoded bytes
---@nodiscard
function base64.decode(text) end

---`data` in base64url (RFC 4648 §5: `-` and `_` instead of `+` and `/`),
---without padding, as JWTs use.
---@param data string bytes to encode (any Lua string)
---@return string
---@nodiscard
function base64.url_encode(data) end

---The bytes that base64url `text` encodes, padded or unpadded.
---
---Raises an error when `text` is not valid base64url; the message names the
---byte position.
---@param text string base64url (`-` and `_`)
---@return string bytes the decoded bytes
---@nodiscard
function base64.url_decode(text) end

return base64
