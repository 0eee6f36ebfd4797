---@meta uuid

---UUIDs, built in (also `require "uuid"`).
---@class uuidlib
uuid = {}

---A random version-4 UUID (122 random bits), in lower case:
---`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx` (`y` is one of `8 9 a b`).
---@return string
---@nodiscard
function uuid.v4() end

return uuid
