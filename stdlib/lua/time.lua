---@meta time

---Wall-clock and monotonic time in milliseconds, ISO 8601 text both ways, and a
---deadline-aware sleep, built in (also `require "time"`).
---
---Errors are Lua error strings, catchable with `pcall`, e.g.
---`app.lua:7: time.parse_iso8601: argument 1 has no month 13`.
---@class timelib
time = {}

---Milliseconds since the Unix epoch (1970-01-01T00:00:00Z), now.
---@return integer ms
---@nodiscard
function time.now() end

---A monotonic clock in milliseconds, as a float with sub-millisecond precision.
---
---Its origin is arbitrary: only differences mean anything. Use it to measure
---durations (`local t0 = time.monotonic() ... time.monotonic() - t0`); it does
---not jump when the wall clock is adjusted.
---@return number ms
---@nodiscard
function time.monotonic() end

---`ms` since the Unix epoch (default: now) as ISO 8601 UTC text with
---milliseconds, e.g. `2024-05-01T12:00:00.123Z`.
---
---Raises an error when `ms` is outside the years 0 to 9999.
---@param ms? integer milliseconds since the epoch (default: `time.now()`)
---@return string
---@nodiscard
function time.iso8601(ms) end

---Milliseconds since the Unix epoch of ISO 8601 text.
---
---Accepts `YYYY-MM-DD`, optionally followed by `T` (or `t` or a space) and
---`hh:mm`, then optionally `:ss`, a fraction after `.` or `,` (digits past
---milliseconds are truncated), and an offset `Z`, `±hh:mm`, `±hhmm` or `±hh`.
---Without an offset the time is UTC.
---
---Examples: `"2024-05-01"`, `"2024-05-01T12:00:00.123Z"`, `"2024-05-01 14:00+02:00"`.
---
---Raises an error saying what was expected at which byte when `text` is not
---in that form (or names an impossible date or time).
---@param text string
---@return integer ms
---@nodiscard
function time.parse_iso8601(text) end

---Waits `ms` milliseconds (fractions allowed).
---
---Never waits past the invocation's deadline: a sleep that would outlast it
---ends the invocation with a `Runtime.Timeout` error, even if the error is
---caught with `pcall`. Check `context:get_remaining_time_in_millis()` first
---when that matters.
---
---Raises an error when `ms` is negative or not a number.
---@param ms number milliseconds, >= 0
function time.sleep(ms) end

return time
