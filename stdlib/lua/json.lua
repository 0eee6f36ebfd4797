---@meta json

---JSON encode and decode with lua-cjson's names, built in (also `require "json"`).
---
---Mapping: JSON objects ↔ tables with string keys; JSON arrays ↔ tables with keys
---`1..n` (decoded arrays carry `json.array_mt`); JSON `null` ↔ `json.null`;
---integers ↔ Lua integers, other numbers ↔ floats.
---
---`json.null` is TRUTHY in Lua: `event.x or default` does NOT replace a JSON
---null. Test for a missing-or-null value with:
---```lua
---local v = event.x
---if v == nil or v == json.null then v = default end
---```
---
---Errors are plain strings (catchable with `pcall`) that say where the problem
---is: a JSON path for `encode`, a line and column for `decode`.
---@class jsonlib
json = {}

---JSON `null`, as `json.decode` returns it and `json.encode` writes it: a
---lightuserdata sentinel (the same value as lua-cjson's `cjson.null`).
---
---It is TRUTHY: `v or default` keeps it. Check `v == nil or v == json.null`.
---@type lightuserdata
json.null = nil

---A metatable marking a table as a JSON array: `setmetatable({}, json.array_mt)`
---encodes as `[]` instead of `{}`, and items `1..#t` are written. Arrays
---returned by `json.decode` and `url.parse_query` carry it.
---@type table
json.array_mt = nil

---A sentinel that encodes as an empty JSON array, `[]`:
---`json.encode({items = json.empty_array})` → `{"items":[]}`.
---@type lightuserdata
json.empty_array = nil

---Options for `json.encode`.
---@class json.EncodeOptions
---@field pretty boolean? indent by two spaces, one member per line, as `JSON.stringify(v, null, 2)` does (default: compact)

---`value` as JSON text.
---
---Tables with keys `1..n` encode as arrays; other tables as objects with their
---keys sorted (so output is stable). An empty table encodes as `{}` unless it
---carries `json.array_mt`; use `json.empty_array` or
---`setmetatable({}, json.array_mt)` for `[]`. Whole floats are written without
---`.0` (`2.0` → `2`). `json.null` encodes as `null`.
---
---Raises an error naming the JSON path when `value` holds something JSON cannot:
---a function, userdata or thread, a recursive table, NaN or infinity, invalid
---UTF-8, a non-string, non-number key, or nesting deeper than 1024 levels. E.g.
---`json.encode: a function cannot be encoded as JSON at $.items[2].f`.
---@param value any
---@param options? json.EncodeOptions e.g. `{pretty = true}`
---@return string
---@nodiscard
function json.encode(value, options) end

---The Lua value of JSON `text`.
---
---Objects become tables, arrays become tables carrying `json.array_mt`, `null`
---becomes `json.null` (truthy!), integers become Lua integers and other numbers
---floats.
---
---Raises an error giving the line and column when `text` is not valid JSON (or
---nests deeper than 1024 levels).
---@param text string JSON text
---@return any
---@nodiscard
function json.decode(text) end

return json
